from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.problem import Problem
from ...models.webhook_out import WebhookOut
from typing import cast



def _get_kwargs(
    agency: str,

) -> dict[str, Any]:
    

    

    

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/agencies/{agency}/webhook".format(agency=quote(str(agency), safe=""),),
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | WebhookOut | None:
    if response.status_code == 200:
        response_200 = WebhookOut.from_dict(response.json())



        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())



        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | WebhookOut]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    agency: str,
    *,
    client: AuthenticatedClient,

) -> Response[Problem | WebhookOut]:
    """ The agency's webhook endpoint and its health

    Args:
        agency (str): Agency identifier (lowercase slug)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WebhookOut]
     """


    kwargs = _get_kwargs(
        agency=agency,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    agency: str,
    *,
    client: AuthenticatedClient,

) -> Problem | WebhookOut | None:
    """ The agency's webhook endpoint and its health

    Args:
        agency (str): Agency identifier (lowercase slug)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WebhookOut
     """


    return sync_detailed(
        agency=agency,
client=client,

    ).parsed

async def asyncio_detailed(
    agency: str,
    *,
    client: AuthenticatedClient,

) -> Response[Problem | WebhookOut]:
    """ The agency's webhook endpoint and its health

    Args:
        agency (str): Agency identifier (lowercase slug)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WebhookOut]
     """


    kwargs = _get_kwargs(
        agency=agency,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    agency: str,
    *,
    client: AuthenticatedClient,

) -> Problem | WebhookOut | None:
    """ The agency's webhook endpoint and its health

    Args:
        agency (str): Agency identifier (lowercase slug)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WebhookOut
     """


    return (await asyncio_detailed(
        agency=agency,
client=client,

    )).parsed
