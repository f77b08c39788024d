from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.erasure_out import ErasureOut
from ...models.post_erasure_v1_referrals_referral_id_erasure_post_erasure_in import PostErasureV1ReferralsReferralIdErasurePostErasureIn
from ...models.problem import Problem
from typing import cast



def _get_kwargs(
    referral_id: str,
    *,
    body: PostErasureV1ReferralsReferralIdErasurePostErasureIn,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/referrals/{referral_id}/erasure".format(referral_id=quote(str(referral_id), safe=""),),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ErasureOut | Problem | None:
    if response.status_code == 202:
        response_202 = ErasureOut.from_dict(response.json())



        return response_202

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[ErasureOut | Problem]:
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
    body: PostErasureV1ReferralsReferralIdErasurePostErasureIn,

) -> Response[ErasureOut | Problem]:
    """ Ask for the referral's erasure, with its legal basis (a supervisor of the national coordinator); a
    `dpo` approves it (POST .../erasure/approve)

    Args:
        referral_id (str):
        body (PostErasureV1ReferralsReferralIdErasurePostErasureIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErasureOut | Problem]
     """


    kwargs = _get_kwargs(
        referral_id=referral_id,
body=body,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    referral_id: str,
    *,
    client: AuthenticatedClient,
    body: PostErasureV1ReferralsReferralIdErasurePostErasureIn,

) -> ErasureOut | Problem | None:
    """ Ask for the referral's erasure, with its legal basis (a supervisor of the national coordinator); a
    `dpo` approves it (POST .../erasure/approve)

    Args:
        referral_id (str):
        body (PostErasureV1ReferralsReferralIdErasurePostErasureIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErasureOut | Problem
     """


    return sync_detailed(
        referral_id=referral_id,
client=client,
body=body,

    ).parsed

async def asyncio_detailed(
    referral_id: str,
    *,
    client: AuthenticatedClient,
    body: PostErasureV1ReferralsReferralIdErasurePostErasureIn,

) -> Response[ErasureOut | Problem]:
    """ Ask for the referral's erasure, with its legal basis (a supervisor of the national coordinator); a
    `dpo` approves it (POST .../erasure/approve)

    Args:
        referral_id (str):
        body (PostErasureV1ReferralsReferralIdErasurePostErasureIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErasureOut | Problem]
     """


    kwargs = _get_kwargs(
        referral_id=referral_id,
body=body,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    referral_id: str,
    *,
    client: AuthenticatedClient,
    body: PostErasureV1ReferralsReferralIdErasurePostErasureIn,

) -> ErasureOut | Problem | None:
    """ Ask for the referral's erasure, with its legal basis (a supervisor of the national coordinator); a
    `dpo` approves it (POST .../erasure/approve)

    Args:
        referral_id (str):
        body (PostErasureV1ReferralsReferralIdErasurePostErasureIn):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErasureOut | Problem
     """


    return (await asyncio_detailed(
        referral_id=referral_id,
client=client,
body=body,

    )).parsed
