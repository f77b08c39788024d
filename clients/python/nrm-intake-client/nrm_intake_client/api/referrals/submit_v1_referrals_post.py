from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.problem import Problem
from ...models.submit_v1_referrals_post_tip_in import SubmitV1ReferralsPostTipIn
from ...models.submit_v1_referrals_post_victim_referral_in import SubmitV1ReferralsPostVictimReferralIn
from ...models.submitted import Submitted
from ...types import UNSET, Unset
from typing import cast



def _get_kwargs(
    *,
    body: SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn,
    idempotency_key: None | str | Unset = UNSET,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["idempotency-key"] = idempotency_key



    

    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/referrals",
    }

    
    if isinstance(body, SubmitV1ReferralsPostVictimReferralIn):
        _kwargs["json"] = body.to_dict()
    else:
        _kwargs["json"] = body.to_dict()


    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Submitted | None:
    if response.status_code == 200:
        response_200 = Submitted.from_dict(response.json())



        return response_200

    if response.status_code == 201:
        response_201 = Submitted.from_dict(response.json())



        return response_201

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())



        return response_409

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Submitted]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn,
    idempotency_key: None | str | Unset = UNSET,

) -> Response[Problem | Submitted]:
    """ Submit a victim referral or a tip

    Args:
        idempotency_key (None | str | Unset):
        body (SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Submitted]
     """


    kwargs = _get_kwargs(
        body=body,
idempotency_key=idempotency_key,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient,
    body: SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn,
    idempotency_key: None | str | Unset = UNSET,

) -> Problem | Submitted | None:
    """ Submit a victim referral or a tip

    Args:
        idempotency_key (None | str | Unset):
        body (SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Submitted
     """


    return sync_detailed(
        client=client,
body=body,
idempotency_key=idempotency_key,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn,
    idempotency_key: None | str | Unset = UNSET,

) -> Response[Problem | Submitted]:
    """ Submit a victim referral or a tip

    Args:
        idempotency_key (None | str | Unset):
        body (SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Submitted]
     """


    kwargs = _get_kwargs(
        body=body,
idempotency_key=idempotency_key,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient,
    body: SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn,
    idempotency_key: None | str | Unset = UNSET,

) -> Problem | Submitted | None:
    """ Submit a victim referral or a tip

    Args:
        idempotency_key (None | str | Unset):
        body (SubmitV1ReferralsPostTipIn | SubmitV1ReferralsPostVictimReferralIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Submitted
     """


    return (await asyncio_detailed(
        client=client,
body=body,
idempotency_key=idempotency_key,

    )).parsed
