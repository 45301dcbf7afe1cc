"""TokenVerifier against a JWKS served over loopback: caching, rotation, floods."""

from __future__ import annotations

import time
import uuid

import pytest

from common.auth import InvalidToken, TokenVerifier
from tests.support import jwks as jwks_support


@pytest.fixture
def server():
    served = jwks_support.JwksServer(keys={"k1": jwks_support.new_key()}).start()
    yield served
    served.stop()


def verifier(server: jwks_support.JwksServer, cooldown: float = 30.0) -> TokenVerifier:
    return TokenVerifier(
        server.url, jwks_support.ISSUER, jwks_support.AUDIENCE, unknown_kid_cooldown=cooldown
    )


def test_the_key_set_is_fetched_once_and_cached(server):
    check = verifier(server)
    token = jwks_support.mint(server.keys["k1"], "k1", sub="ada")
    for _ in range(5):
        assert check.verify(token).subject == "ada"
    assert server.fetches == 1


def test_a_flood_of_unknown_kids_makes_at_most_one_more_fetch(server):
    # Given a verifier that has the key set
    check = verifier(server)
    check.verify(jwks_support.mint(server.keys["k1"], "k1"))
    # When 50 tokens name kids nobody published, signed by a key nobody knows
    stranger = jwks_support.new_key()
    for _ in range(50):
        with pytest.raises(InvalidToken):
            check.verify(jwks_support.mint(stranger, f"forged-{uuid.uuid4()}"))
    # Then the issuer saw at most one refetch, not fifty
    assert server.fetches <= 2


def test_a_rotated_key_is_fetched_when_a_token_names_it(server):
    check = verifier(server, cooldown=0.2)
    check.verify(jwks_support.mint(server.keys["k1"], "k1"))
    # The issuer publishes a new key and starts signing with it
    server.keys["k2"] = jwks_support.new_key()
    time.sleep(0.3)  # past the cooldown that follows the first fetch
    assert check.verify(jwks_support.mint(server.keys["k2"], "k2", sub="grace")).subject == "grace"
    assert server.fetches == 2
