"""Token issuer: agencies, clients, OAuth2 client credentials, JWKS, signing-key rotation."""
