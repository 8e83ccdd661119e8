"""Keys out of the text the config shows: messages, warnings, the summary.

Messages are built from the schema's own words and never quote a value, but a
few parts are the user's text (an unknown field's name, a passthrough label, a
url) and a key can be typed there by mistake. Such a part is replaced whole when
it is a key. A key is also replaced wherever it appears in the text, but only
when it is long enough to be told from ordinary text: scrubbing a 3-letter key
everywhere would cut words apart, and where the cuts land would spell the key.
Keys that short are warned about at load for this reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from relay.secret import Secret, redact

__all__ = ["MIN_KEY_LENGTH", "scrub", "scrub_part"]

MIN_KEY_LENGTH = 16


def scrub_part(text: str, secrets: Iterable[Secret]) -> str:
    """A piece of the user's text: ``<redacted:…>`` if it is a key, else ``scrub`` of it."""
    keys = list(secrets)
    for secret in keys:
        if secret.matches(text):
            return f"<redacted:{secret.fingerprint}>"
    return scrub(text, keys)


def scrub(text: str, secrets: Iterable[Secret]) -> str:
    """``text`` with every key of at least MIN_KEY_LENGTH characters replaced by its fingerprint."""
    return redact(text, [secret for secret in secrets if len(secret.reveal()) >= MIN_KEY_LENGTH])
