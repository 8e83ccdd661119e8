"""Stream keys as values that refuse to show themselves.

A stream key is the only thing standing between a stranger and a broadcast on
someone's channel, so it is wrapped the moment it is read and unwrapped only
where the bytes go on the wire. Everything else (repr, str, format, logs,
status pages, pickles) sees ``Secret(sha256:1a2b3c4d)``: enough to tell two keys
apart, not enough to use one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import NoReturn
from urllib.parse import quote

__all__ = ["Secret", "redact"]


def _utf8(text: str) -> bytes:
    # surrogatepass: a candidate decoded from the wire may hold lone surrogates,
    # and a UnicodeEncodeError would carry the whole string in its .object.
    return text.encode("utf-8", "surrogatepass")


class Secret:
    """A stream key; only ``reveal()`` returns it."""

    # Not a dataclass on purpose: dataclasses.asdict() would recurse into it and
    # copy the key into a plain dict that someone then serializes.
    __slots__ = ("_digest", "_value")

    _value: str
    _digest: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a stream key must be a str, not {type(value).__name__}")
        if not value:
            raise ValueError("a stream key must not be empty")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_digest", hashlib.sha256(_utf8(value)).hexdigest())

    def reveal(self) -> str:
        """The key itself, for the one place that sends it to a server."""
        return self._value

    @property
    def fingerprint(self) -> str:
        """First 8 hex digits of the key's SHA-256: safe to log, enough to compare."""
        return self._digest[:8]

    def matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is this key, in time independent of where they differ."""
        # compare_digest still reveals a length mismatch; stream keys have
        # platform-fixed formats, so their length is no secret.
        return hmac.compare_digest(_utf8(self._value), _utf8(candidate))

    def __repr__(self) -> str:
        return f"Secret(sha256:{self.fingerprint})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._digest, other._digest)

    def __hash__(self) -> int:
        return hash(self._digest)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    # Immutable, so copies can be the object itself; this also keeps
    # dataclasses.asdict() and copy.deepcopy() of a config working.
    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    # A pickle is bytes on disk or on a socket: refuse rather than write the key.
    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(f"{self!r} cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError(f"{self!r} cannot be pickled")


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """``text`` with every key in ``secrets`` replaced by ``<redacted:FINGERPRINT>``."""
    forms: dict[str, str] = {}
    for secret in secrets:
        key = secret.reveal()
        label = f"<redacted:{secret.fingerprint}>"
        forms[key] = label
        # Keys also travel percent-encoded inside URLs (an RTMP tcUrl, an error
        # from a URL library).
        forms.setdefault(quote(key, safe=""), label)
    # Longest first, so a key that contains another key is not half-replaced.
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, forms[form])
    return text
