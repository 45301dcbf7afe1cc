"""A signing key, its JWKS served over loopback HTTP, and tokens minted with it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://issuer.orderflow.test"
AUDIENCE = "orderflow-api"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class JwksServer:
    """Serves ``keys`` at ``url``; counts fetches so tests can see the cache work."""

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    fetches: int = 0

    def start(self) -> JwksServer:
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server_self.fetches += 1
                body = json.dumps(
                    {"keys": [public_jwk(k, kid) for kid, k in server_self.keys.items()]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def mint(
    key: rsa.RSAPrivateKey,
    kid: str,
    *,
    sub: str = "customer-1",
    email: str | None = "ada@example.com",
    scope: str | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    expires_in: int = 3600,
    **extra: Any,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + expires_in,
        **extra,
    }
    if email is not None:
        # As an OIDC issuer mints it: an address it vouches for says so.
        claims["email"] = email
        claims.setdefault("email_verified", True)
    if scope is not None:
        claims["scope"] = scope
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def sign(key: rsa.RSAPrivateKey, kid: str, claims: dict[str, Any]) -> str:
    """``claims`` exactly as given (nothing added), signed RS256."""
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def cognito_id_claims(
    *, sub: str = "customer-1", email: str = "ada@example.com", client: str = AUDIENCE, **extra: Any
) -> dict[str, Any]:
    """The claims of a Cognito user pool ID token: ``aud``, ``email``, no ``scope``."""
    now = int(time.time())
    return {
        "sub": sub,
        "iss": ISSUER,
        "aud": client,
        "token_use": "id",
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "email": email,
        "email_verified": True,
        "cognito:username": sub,
        "origin_jti": "5b6f1c8e-1f0e-4d7e-9f3a-3d1c2b0a9e8f",
        "event_id": "0f4e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f",
        "jti": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        **extra,
    }


def cognito_access_claims(
    *, sub: str = "customer-1", scope: str = "openid email", client: str = AUDIENCE, **extra: Any
) -> dict[str, Any]:
    """The claims of a Cognito access token: ``client_id``, ``scope``, no ``aud``, no ``email``."""
    now = int(time.time())
    return {
        "sub": sub,
        "iss": ISSUER,
        "client_id": client,
        "token_use": "access",
        "scope": scope,
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "username": sub,
        "origin_jti": "5b6f1c8e-1f0e-4d7e-9f3a-3d1c2b0a9e8f",
        "event_id": "0f4e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f",
        "jti": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        **extra,
    }
