"""Bearer token verification: RS256 JWTs against a JWKS (defence in depth behind
the HTTP API's JWT authorizer, and the only check under ``sam local``).

Tokens are checked as a real issuer mints them (Cognito's two kinds included):

* ID tokens (and generic OIDC tokens) carry ``aud``; Cognito access tokens carry
  ``client_id`` and no ``aud``. As the HTTP API JWT authorizer does, ``aud`` must
  name the audience when it is present, otherwise ``client_id`` must.
* ``token_use``, when present, must be ``id`` or ``access``.
* Every claim the functions use is validated here, so a token outside the
  contract's limits is a 401 (or an unusable email, which only an order needs),
  never an error further down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWKClient

JWKS_CACHE_SECONDS = 24 * 3600  # refetched earlier when a token names an unknown kid
# At most one refetch for unknown kids per this many seconds: a flood of tokens with
# made-up kids cannot turn into a flood of requests to the issuer.
UNKNOWN_KID_COOLDOWN_SECONDS = 30.0

# One fetch of the key set waits at most this long (connect, then each read), well
# inside the HTTP functions' 15 s timeout: an issuer that never answers costs the
# request 5 s and a 503, not the invocation.
JWKS_TIMEOUT_SECONDS = 5.0

MAX_SUBJECT = 256  # the contract's customer ID
MIN_EMAIL, MAX_EMAIL = 3, 320  # OrderCreated.customerEmail
TOKEN_USES = frozenset({"id", "access"})


class InvalidToken(Exception):
    """The token is missing, malformed, expired, wrongly signed or for someone else."""


class KeySetUnavailable(Exception):
    """The JWKS could not be fetched: our fault, not the client's."""


@dataclass(frozen=True)
class Principal:
    subject: str
    # A verified email of the contract's length, or None (then ``email_problem`` says why).
    email: str | None
    scopes: frozenset[str]
    groups: frozenset[str] = frozenset()
    is_admin: bool = False
    email_problem: str | None = None


def _audience_matches(claims: dict[str, Any], audience: str) -> bool:
    """The HTTP API JWT authorizer's rule: ``aud`` if present, else ``client_id``."""
    if "aud" in claims:
        aud = claims["aud"]
        if isinstance(aud, str):
            return aud == audience
        return isinstance(aud, list) and audience in aud and all(isinstance(a, str) for a in aud)
    return claims.get("client_id") == audience


def _email(claims: dict[str, Any], verified_by_issuer: bool = False) -> tuple[str | None, str | None]:
    """(email, None) when the token carries a usable, verified email; else (None, why).

    Verified means ``email_verified`` true; a token without the claim only when the
    issuer is configured as one that verifies every address (``verified_by_issuer``).
    """
    email = claims.get("email")
    if email is None:
        return None, "the token carries no email"
    if not isinstance(email, str) or not MIN_EMAIL <= len(email) <= MAX_EMAIL:
        return None, f"the token's email must be {MIN_EMAIL} to {MAX_EMAIL} characters"
    if any(c.isspace() or ord(c) < 32 for c in email) or "@" not in email:
        return None, "the token's email is not an address"
    if "email_verified" not in claims:
        if verified_by_issuer:
            return email, None
        return None, "the token's email is not verified (no email_verified claim)"
    verified = claims["email_verified"]
    # Cognito puts a boolean; some federated issuers pass the string "true".
    if verified is not True and not (isinstance(verified, str) and verified.lower() == "true"):
        return None, "the token's email is not verified"
    return email, None


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
        admin_scope: str | None = "admin",
        admin_group: str | None = "admin",
        emails_verified_by_issuer: bool = False,
        timeout: float = JWKS_TIMEOUT_SECONDS,
        unknown_kid_cooldown: float = UNKNOWN_KID_COOLDOWN_SECONDS,
    ) -> None:
        if not admin_scope and not admin_group:
            raise ValueError("an admin scope or an admin group is required")
        self._jwks = PyJWKClient(
            jwks_url,
            cache_jwk_set=True,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=timeout,
            cooldown_duration=unknown_kid_cooldown,
        )
        self._issuer = issuer
        self._audience = audience
        self._admin_scope = admin_scope or None
        self._admin_group = admin_group or None
        self._emails_verified_by_issuer = emails_verified_by_issuer

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
                issuer=self._issuer,
                # The audience is checked below, as the authorizer does (aud or client_id).
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc)) from exc
        except (TypeError, ValueError) as exc:  # e.g. a non-numeric exp in an odd PyJWT path
            raise InvalidToken(f"malformed claims: {exc}") from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        if not _audience_matches(claims, self._audience):
            raise InvalidToken("the token is for another audience")
        token_use = claims.get("token_use")
        if token_use is not None and not (isinstance(token_use, str) and token_use in TOKEN_USES):
            raise InvalidToken("token_use must be id or access")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_SUBJECT:
            raise InvalidToken(f"sub must be a string of 1 to {MAX_SUBJECT} characters")
        if "\x00" in subject:
            raise InvalidToken("sub must not contain NUL")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("scope must be a space-separated string")
        groups = claims.get("cognito:groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InvalidToken("cognito:groups must be a list of strings")
        scopes, group_set = frozenset(scope.split()), frozenset(groups)
        email, problem = _email(claims, self._emails_verified_by_issuer)
        return Principal(
            subject=subject,
            email=email,
            scopes=scopes,
            groups=group_set,
            is_admin=(self._admin_scope is not None and self._admin_scope in scopes)
            or (self._admin_group is not None and self._admin_group in group_set),
            email_problem=problem,
        )
