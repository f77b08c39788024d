from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.attempt import Attempt
from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    agency: str,
    *,
    limit: int | Unset = 100,

) -> dict[str, Any]:
    

    

    params: dict[str, Any] = {}

    params["limit"] = limit


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/agencies/{agency}/webhook/attempts".format(agency=quote(str(agency), safe=""),),
        "params": params,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | list[Attempt] | None:
    if response.status_code == 200:
        response_200 = []
        _response_200 = response.json()
        for response_200_item_data in (_response_200):
            response_200_item = Attempt.from_dict(response_200_item_data)



            response_200.append(response_200_item)

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | list[Attempt]]:
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
    limit: int | Unset = 100,

) -> Response[Problem | list[Attempt]]:
    """ The webhook delivery-attempt log

    Args:
        agency (str): Agency identifier (lowercase slug)
        limit (int | Unset): Items per page Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | list[Attempt]]
     """


    kwargs = _get_kwargs(
        agency=agency,
limit=limit,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    agency: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 100,

) -> Problem | list[Attempt] | None:
    """ The webhook delivery-attempt log

    Args:
        agency (str): Agency identifier (lowercase slug)
        limit (int | Unset): Items per page Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | list[Attempt]
     """


    return sync_detailed(
        agency=agency,
client=client,
limit=limit,

    ).parsed

async def asyncio_detailed(
    agency: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 100,

) -> Response[Problem | list[Attempt]]:
    """ The webhook delivery-attempt log

    Args:
        agency (str): Agency identifier (lowercase slug)
        limit (int | Unset): Items per page Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | list[Attempt]]
     """


    kwargs = _get_kwargs(
        agency=agency,
limit=limit,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    agency: str,
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 100,

) -> Problem | list[Attempt] | None:
    """ The webhook delivery-attempt log

    Args:
        agency (str): Agency identifier (lowercase slug)
        limit (int | Unset): Items per page Default: 100.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | list[Attempt]
     """


    return (await asyncio_detailed(
        agency=agency,
client=client,
limit=limit,

    )).parsed
