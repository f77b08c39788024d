"""A test issuer: mints RFC 9068 tokens for any agency and roles, and serves its JWKS."""

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

ISSUER = "https://issuer.test"
AUDIENCE = "nrm-exchange"


class TokenMint:
    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "test-key"})

    async def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def token(
        self, agency: str, *roles: str, client_id: str | None = None, person: str | None = None
    ) -> str:
        """A token for a client (`sub` = client id), or for a `person` signed in through it."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": person or client_id or agency,
            "client_id": client_id or agency,
            "agency": agency,
            "roles": list(roles),
            "scope": " ".join(roles),
            "exp": now + 600,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": "ES256", "kid": "test-key", "typ": "at+jwt"}
        return jwt.encode(header, claims, self.key)

    def headers(self, agency: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(agency, *roles)}"}
