from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.problem import Problem
from ...models.webhook_in import WebhookIn
from ...models.webhook_out import WebhookOut
from typing import cast



def _get_kwargs(
    agency: str,
    *,
    body: WebhookIn,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/v1/agencies/{agency}/webhook".format(agency=quote(str(agency), safe=""),),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | WebhookOut | None:
    if response.status_code == 200:
        response_200 = WebhookOut.from_dict(response.json())



        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())



        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())



        return response_415

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
    body: WebhookIn,

) -> Response[Problem | WebhookOut]:
    """ Set the agency's webhook endpoint

    Args:
        agency (str): Agency identifier (lowercase slug)
        body (WebhookIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WebhookOut]
     """


    kwargs = _get_kwargs(
        agency=agency,
body=body,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    agency: str,
    *,
    client: AuthenticatedClient,
    body: WebhookIn,

) -> Problem | WebhookOut | None:
    """ Set the agency's webhook endpoint

    Args:
        agency (str): Agency identifier (lowercase slug)
        body (WebhookIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WebhookOut
     """


    return sync_detailed(
        agency=agency,
client=client,
body=body,

    ).parsed

async def asyncio_detailed(
    agency: str,
    *,
    client: AuthenticatedClient,
    body: WebhookIn,

) -> Response[Problem | WebhookOut]:
    """ Set the agency's webhook endpoint

    Args:
        agency (str): Agency identifier (lowercase slug)
        body (WebhookIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | WebhookOut]
     """


    kwargs = _get_kwargs(
        agency=agency,
body=body,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    agency: str,
    *,
    client: AuthenticatedClient,
    body: WebhookIn,

) -> Problem | WebhookOut | None:
    """ Set the agency's webhook endpoint

    Args:
        agency (str): Agency identifier (lowercase slug)
        body (WebhookIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | WebhookOut
     """


    return (await asyncio_detailed(
        agency=agency,
client=client,
body=body,

    )).parsed
