from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    referral_id: str,
    *,
    x_purpose: None | str | Unset = UNSET,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_purpose, Unset):
        headers["X-Purpose"] = x_purpose



    

    

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/referrals/{referral_id}/subject-access".format(referral_id=quote(str(referral_id), safe=""),),
    }


    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Problem | None:
    if response.status_code == 200:
        response_200 = response.json()
        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

    if response.status_code == 410:
        response_410 = Problem.from_dict(response.json())



        return response_410

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())



        return response_422

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())



        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    referral_id: str,
    *,
    client: AuthenticatedClient,
    x_purpose: None | str | Unset = UNSET,

) -> Response[Any | Problem]:
    """ Everything held on one referral, for its subject (a `dpo`): the data at `full`, its recipients and
    their disclosure levels, and every access recorded by audit; JSON, or a printable document (`Accept:
    text/html` or `text/markdown`)

    Args:
        referral_id (str):
        x_purpose (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
     """


    kwargs = _get_kwargs(
        referral_id=referral_id,
x_purpose=x_purpose,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    referral_id: str,
    *,
    client: AuthenticatedClient,
    x_purpose: None | str | Unset = UNSET,

) -> Any | Problem | None:
    """ Everything held on one referral, for its subject (a `dpo`): the data at `full`, its recipients and
    their disclosure levels, and every access recorded by audit; JSON, or a printable document (`Accept:
    text/html` or `text/markdown`)

    Args:
        referral_id (str):
        x_purpose (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
     """


    return sync_detailed(
        referral_id=referral_id,
client=client,
x_purpose=x_purpose,

    ).parsed

async def asyncio_detailed(
    referral_id: str,
    *,
    client: AuthenticatedClient,
    x_purpose: None | str | Unset = UNSET,

) -> Response[Any | Problem]:
    """ Everything held on one referral, for its subject (a `dpo`): the data at `full`, its recipients and
    their disclosure levels, and every access recorded by audit; JSON, or a printable document (`Accept:
    text/html` or `text/markdown`)

    Args:
        referral_id (str):
        x_purpose (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
     """


    kwargs = _get_kwargs(
        referral_id=referral_id,
x_purpose=x_purpose,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    referral_id: str,
    *,
    client: AuthenticatedClient,
    x_purpose: None | str | Unset = UNSET,

) -> Any | Problem | None:
    """ Everything held on one referral, for its subject (a `dpo`): the data at `full`, its recipients and
    their disclosure levels, and every access recorded by audit; JSON, or a printable document (`Accept:
    text/html` or `text/markdown`)

    Args:
        referral_id (str):
        x_purpose (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
     """


    return (await asyncio_detailed(
        referral_id=referral_id,
client=client,
x_purpose=x_purpose,

    )).parsed
