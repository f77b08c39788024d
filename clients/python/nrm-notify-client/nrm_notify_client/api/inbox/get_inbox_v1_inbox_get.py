from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.delivery_status import DeliveryStatus
from ...models.inbox_page import InboxPage
from ...models.problem import Problem
from ...models.urgency import Urgency
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    *,
    status: list[DeliveryStatus] | Unset = UNSET,
    urgency: None | Unset | Urgency = UNSET,
    overdue: bool | None | Unset = UNSET,
    referral: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,

) -> dict[str, Any]:
    

    

    params: dict[str, Any] = {}

    json_status: list[str] | Unset = UNSET
    if not isinstance(status, Unset):
        json_status = []
        for status_item_data in status:
            status_item = status_item_data.value
            json_status.append(status_item)


    params["status"] = json_status

    json_urgency: None | str | Unset
    if isinstance(urgency, Unset):
        json_urgency = UNSET
    elif isinstance(urgency, Urgency):
        json_urgency = urgency.value
    else:
        json_urgency = urgency
    params["urgency"] = json_urgency

    json_overdue: bool | None | Unset
    if isinstance(overdue, Unset):
        json_overdue = UNSET
    else:
        json_overdue = overdue
    params["overdue"] = json_overdue

    json_referral: None | str | Unset
    if isinstance(referral, Unset):
        json_referral = UNSET
    else:
        json_referral = referral
    params["referral"] = json_referral

    params["limit"] = limit

    json_cursor: None | str | Unset
    if isinstance(cursor, Unset):
        json_cursor = UNSET
    else:
        json_cursor = cursor
    params["cursor"] = json_cursor


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/inbox",
        "params": params,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> InboxPage | Problem | None:
    if response.status_code == 200:
        response_200 = InboxPage.from_dict(response.json())



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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[InboxPage | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    status: list[DeliveryStatus] | Unset = UNSET,
    urgency: None | Unset | Urgency = UNSET,
    overdue: bool | None | Unset = UNSET,
    referral: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,

) -> Response[InboxPage | Problem]:
    """ Deliveries to the caller's agency, newest first

    Args:
        status (list[DeliveryStatus] | Unset):
        urgency (None | Unset | Urgency):
        overdue (bool | None | Unset):
        referral (None | str | Unset): One referral's (its id)
        limit (int | Unset): Items per page Default: 50.
        cursor (None | str | Unset): `next_cursor` of the previous page, passed back unchanged
            (opaque)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[InboxPage | Problem]
     """


    kwargs = _get_kwargs(
        status=status,
urgency=urgency,
overdue=overdue,
referral=referral,
limit=limit,
cursor=cursor,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient,
    status: list[DeliveryStatus] | Unset = UNSET,
    urgency: None | Unset | Urgency = UNSET,
    overdue: bool | None | Unset = UNSET,
    referral: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,

) -> InboxPage | Problem | None:
    """ Deliveries to the caller's agency, newest first

    Args:
        status (list[DeliveryStatus] | Unset):
        urgency (None | Unset | Urgency):
        overdue (bool | None | Unset):
        referral (None | str | Unset): One referral's (its id)
        limit (int | Unset): Items per page Default: 50.
        cursor (None | str | Unset): `next_cursor` of the previous page, passed back unchanged
            (opaque)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        InboxPage | Problem
     """


    return sync_detailed(
        client=client,
status=status,
urgency=urgency,
overdue=overdue,
referral=referral,
limit=limit,
cursor=cursor,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    status: list[DeliveryStatus] | Unset = UNSET,
    urgency: None | Unset | Urgency = UNSET,
    overdue: bool | None | Unset = UNSET,
    referral: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,

) -> Response[InboxPage | Problem]:
    """ Deliveries to the caller's agency, newest first

    Args:
        status (list[DeliveryStatus] | Unset):
        urgency (None | Unset | Urgency):
        overdue (bool | None | Unset):
        referral (None | str | Unset): One referral's (its id)
        limit (int | Unset): Items per page Default: 50.
        cursor (None | str | Unset): `next_cursor` of the previous page, passed back unchanged
            (opaque)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[InboxPage | Problem]
     """


    kwargs = _get_kwargs(
        status=status,
urgency=urgency,
overdue=overdue,
referral=referral,
limit=limit,
cursor=cursor,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient,
    status: list[DeliveryStatus] | Unset = UNSET,
    urgency: None | Unset | Urgency = UNSET,
    overdue: bool | None | Unset = UNSET,
    referral: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    cursor: None | str | Unset = UNSET,

) -> InboxPage | Problem | None:
    """ Deliveries to the caller's agency, newest first

    Args:
        status (list[DeliveryStatus] | Unset):
        urgency (None | Unset | Urgency):
        overdue (bool | None | Unset):
        referral (None | str | Unset): One referral's (its id)
        limit (int | Unset): Items per page Default: 50.
        cursor (None | str | Unset): `next_cursor` of the previous page, passed back unchanged
            (opaque)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        InboxPage | Problem
     """


    return (await asyncio_detailed(
        client=client,
status=status,
urgency=urgency,
overdue=overdue,
referral=referral,
limit=limit,
cursor=cursor,

    )).parsed
