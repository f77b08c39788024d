from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.due_list import DueList
from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    *,
    within_days: int | Unset = 30,
    limit: int | Unset = 200,

) -> dict[str, Any]:
    

    

    params: dict[str, Any] = {}

    params["within_days"] = within_days

    params["limit"] = limit


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/retention/due",
        "params": params,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> DueList | Problem | None:
    if response.status_code == 200:
        response_200 = DueList.from_dict(response.json())



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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[DueList | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    within_days: int | Unset = 30,
    limit: int | Unset = 200,

) -> Response[DueList | Problem]:
    """ Referrals whose retention period ends within `within_days` (or has ended), soonest first: the
    national coordinator's supervisors and the `dpo`

    Args:
        within_days (int | Unset):  Default: 30.
        limit (int | Unset):  Default: 200.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DueList | Problem]
     """


    kwargs = _get_kwargs(
        within_days=within_days,
limit=limit,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient,
    within_days: int | Unset = 30,
    limit: int | Unset = 200,

) -> DueList | Problem | None:
    """ Referrals whose retention period ends within `within_days` (or has ended), soonest first: the
    national coordinator's supervisors and the `dpo`

    Args:
        within_days (int | Unset):  Default: 30.
        limit (int | Unset):  Default: 200.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DueList | Problem
     """


    return sync_detailed(
        client=client,
within_days=within_days,
limit=limit,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    within_days: int | Unset = 30,
    limit: int | Unset = 200,

) -> Response[DueList | Problem]:
    """ Referrals whose retention period ends within `within_days` (or has ended), soonest first: the
    national coordinator's supervisors and the `dpo`

    Args:
        within_days (int | Unset):  Default: 30.
        limit (int | Unset):  Default: 200.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DueList | Problem]
     """


    kwargs = _get_kwargs(
        within_days=within_days,
limit=limit,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient,
    within_days: int | Unset = 30,
    limit: int | Unset = 200,

) -> DueList | Problem | None:
    """ Referrals whose retention period ends within `within_days` (or has ended), soonest first: the
    national coordinator's supervisors and the `dpo`

    Args:
        within_days (int | Unset):  Default: 30.
        limit (int | Unset):  Default: 200.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DueList | Problem
     """


    return (await asyncio_detailed(
        client=client,
within_days=within_days,
limit=limit,

    )).parsed
