"""Who may use the /video/v1 API: Mux's access tokens, sent as HTTP Basic (id:secret).

Every configured token is compared (in constant time for the secret), so how long the
check takes does not tell which id exists. A read token lists and gets; a write token also
creates, changes and deletes, and is shown a live stream's stream key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from enum import Enum

from relay.config.sections import AccessToken


class Access(Enum):
    """What a request's credential allows."""

    NONE = 0
    READ = 1
    WRITE = 2


def basic_credential(header: str) -> tuple[str, str] | None:
    """(id, secret) of an `Authorization: Basic ...` header; None if it is not one."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    token_id, colon, secret = decoded.partition(":")
    return (token_id, secret) if colon and token_id and secret else None


def access_of(credential: tuple[str, str], tokens: Iterable[AccessToken]) -> Access:
    """What the credential allows (NONE when it matches no token)."""
    token_id, secret = credential
    found = Access.NONE
    for token in tokens:  # no early exit
        if token.secret.matches(secret) and token.id == token_id:
            found = Access.WRITE if token.can_write else Access.READ
    return found
