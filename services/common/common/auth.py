"""Bearer token verification: RS256 JWTs against a JWKS (defence in depth behind
the HTTP API's JWT authorizer, and the only check under ``sam local``)."""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from jwt import PyJWKClient

JWKS_CACHE_SECONDS = 24 * 3600  # refetched earlier when a token names an unknown kid
# At most one refetch for unknown kids per this many seconds: a flood of tokens with
# made-up kids cannot turn into a flood of requests to the issuer.
UNKNOWN_KID_COOLDOWN_SECONDS = 30.0


class InvalidToken(Exception):
    """The token is missing, malformed, expired, wrongly signed or for someone else."""


class KeySetUnavailable(Exception):
    """The JWKS could not be fetched: our fault, not the client's."""


@dataclass(frozen=True)
class Principal:
    subject: str
    email: str | None
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


class TokenVerifier:
    """Verifies tokens; the key set is fetched once per container and cached.

    PyJWKClient refetches the set when a token names a ``kid`` it does not know
    (key rotation), at most once per ``unknown_kid_cooldown``, and caches it otherwise.
    """

    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        audience: str,
        *,
        timeout: float = 5,
        unknown_kid_cooldown: float = UNKNOWN_KID_COOLDOWN_SECONDS,
    ) -> None:
        self._jwks = PyJWKClient(
            jwks_url,
            cache_jwk_set=True,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=timeout,
            cooldown_duration=unknown_kid_cooldown,
        )
        self._issuer = issuer
        self._audience = audience

    def verify(self, token: str) -> Principal:
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise KeySetUnavailable(str(exc)) from exc
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise InvalidToken(str(exc)) from exc
        try:
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc)) from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("sub must be a non-empty string")
        email = claims.get("email")
        scope = claims.get("scope", "")
        return Principal(
            subject=subject,
            email=email if isinstance(email, str) and email else None,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
        )
