"""Development tokens: a signing key and its JWKS in the state folder.

``orderflow local`` serves the JWKS to its functions (as Cognito would), and
``orderflow token`` signs tokens with the same key, so a token printed in one
terminal is accepted by the suite running in another.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

ISSUER = "https://orderflow.local"
AUDIENCE = "orderflow-local"
KEY_FILE = "dev-signing-key.pem"


def _load_or_create_key(state_dir: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = state_dir / KEY_FILE
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    state_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Write then rename, readable by the owner only: two commands may race here.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, path)  # fails if another process won the race: use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _kid(public_jwk: dict[str, Any]) -> str:
    import base64
    import hashlib

    # RFC 7638 thumbprint: a stable kid for the key.
    canonical = json.dumps({k: public_jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")


def jwks(state_dir: Path) -> dict[str, Any]:
    from jwt.algorithms import RSAAlgorithm

    key = _load_or_create_key(state_dir)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": _kid(jwk), "use": "sig", "alg": "RS256"}]}


def token(
    state_dir: Path,
    *,
    sub: str,
    email: str | None = None,
    admin: bool = False,
    ttl_s: int = 12 * 3600,
) -> str:
    import jwt
    from jwt.algorithms import RSAAlgorithm

    key = _load_or_create_key(state_dir)
    kid = _kid(json.loads(RSAAlgorithm.to_jwk(key.public_key())))
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl_s,
        "scope": "openid admin" if admin else "openid",
    }
    if admin:
        # Admin by group too, as in the stack's Cognito pool (ADMIN_SCOPE is orderflow/admin there).
        claims["cognito:groups"] = ["admin"]
    if email:
        claims["email"] = email
        claims["email_verified"] = True  # as Cognito says of a confirmed address
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
