from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.get_referral_v1_referrals_referral_id_get_response_get_referral_v1_referrals_referral_id_get import GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet
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
        "url": "/v1/referrals/{referral_id}".format(referral_id=quote(str(referral_id), safe=""),),
    }


    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem | None:
    if response.status_code == 200:
        response_200 = GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet.from_dict(response.json())



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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem]:
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

) -> Response[GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem]:
    """ A referral, filtered by the caller's disclosure level

    Args:
        referral_id (str):
        x_purpose (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem]
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

) -> GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem | None:
    """ A referral, filtered by the caller's disclosure level

    Args:
        referral_id (str):
        x_purpose (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem
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

) -> Response[GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem]:
    """ A referral, filtered by the caller's disclosure level

    Args:
        referral_id (str):
        x_purpose (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem]
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

) -> GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem | None:
    """ A referral, filtered by the caller's disclosure level

    Args:
        referral_id (str):
        x_purpose (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        GetReferralV1ReferralsReferralIdGetResponseGetReferralV1ReferralsReferralIdGet | Problem
     """


    return (await asyncio_detailed(
        referral_id=referral_id,
client=client,
x_purpose=x_purpose,

    )).parsed
