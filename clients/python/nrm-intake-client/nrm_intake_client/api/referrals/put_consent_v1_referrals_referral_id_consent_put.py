from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.consent_out import ConsentOut
from ...models.problem import Problem
from ...models.put_consent_v1_referrals_referral_id_consent_put_consent import PutConsentV1ReferralsReferralIdConsentPutConsent
from typing import cast



def _get_kwargs(
    referral_id: str,
    *,
    body: PutConsentV1ReferralsReferralIdConsentPutConsent,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}


    

    

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/v1/referrals/{referral_id}/consent".format(referral_id=quote(str(referral_id), safe=""),),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ConsentOut | Problem | None:
    if response.status_code == 200:
        response_200 = ConsentOut.from_dict(response.json())



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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[ConsentOut | Problem]:
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
    body: PutConsentV1ReferralsReferralIdConsentPutConsent,

) -> Response[ConsentOut | Problem]:
    """ Record the victim's current consent (the submitter, or a recipient at `support` or above, stating
    language, interpreter and form)

    Args:
        referral_id (str):
        body (PutConsentV1ReferralsReferralIdConsentPutConsent):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ConsentOut | Problem]
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
    body: PutConsentV1ReferralsReferralIdConsentPutConsent,

) -> ConsentOut | Problem | None:
    """ Record the victim's current consent (the submitter, or a recipient at `support` or above, stating
    language, interpreter and form)

    Args:
        referral_id (str):
        body (PutConsentV1ReferralsReferralIdConsentPutConsent):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ConsentOut | Problem
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
    body: PutConsentV1ReferralsReferralIdConsentPutConsent,

) -> Response[ConsentOut | Problem]:
    """ Record the victim's current consent (the submitter, or a recipient at `support` or above, stating
    language, interpreter and form)

    Args:
        referral_id (str):
        body (PutConsentV1ReferralsReferralIdConsentPutConsent):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ConsentOut | Problem]
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
    body: PutConsentV1ReferralsReferralIdConsentPutConsent,

) -> ConsentOut | Problem | None:
    """ Record the victim's current consent (the submitter, or a recipient at `support` or above, stating
    language, interpreter and form)

    Args:
        referral_id (str):
        body (PutConsentV1ReferralsReferralIdConsentPutConsent):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ConsentOut | Problem
     """


    return (await asyncio_detailed(
        referral_id=referral_id,
client=client,
body=body,

    )).parsed
