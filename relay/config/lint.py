"""Warnings about a valid config: it works, but it should not be left so.

Short keys (guessable, and too short for the log scrubber to tell from ordinary
text), key files and config files that others can read, certificate checks
turned off, a live stream relayed nowhere. Each warning is placed in the file
like a problem; the caller decides how to show it (``relay check-config``
prints it, the daemon logs it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from relay.config.errors import Loc, Problem, format_loc
from relay.config.fields import SecretFromFile, SecretSources
from relay.config.model import RelayConfig
from relay.config.scrub import MIN_KEY_LENGTH, scrub_part
from relay.config.values import is_placeholder
from relay.config.yamlsource import YamlDocument
from relay.secret import Secret

__all__ = ["MIN_KEY_LENGTH", "lint"]

_OPEN = stat.S_IRGRP | stat.S_IROTH


def lint(config: RelayConfig, doc: YamlDocument, mode: int | None) -> list[Problem]:
    """The warnings for ``config``, read from ``doc``; ``mode`` is the config file's, if a file."""
    warnings: list[Problem] = []

    def warn(loc: Loc, message: str) -> None:
        line, column = doc.position(loc)
        warnings.append(Problem(line, column, format_loc(loc), message))

    inline = False
    secrets = config.all_secrets()
    for loc, section, secret, who in _secrets(config):
        field = section.given_field()
        inline |= field == section.secret_fields[0]
        if len(secret.reveal()) < MIN_KEY_LENGTH:
            warn((*loc, field), f"{who} is shorter than {MIN_KEY_LENGTH} characters: {_risk(who)}")
        source = getattr(section, field)
        if isinstance(source, SecretFromFile) and _open_to_others(source.path):
            warn((*loc, field), "the file is readable by group or others; run chmod 600 on it")
    if config.server.tls_key_file is not None and _open_to_others(config.server.tls_key_file):
        warn(("server", "tls_key_file"), "the file is readable by group or others; run chmod 600 on it")
    for i, stream in enumerate(config.live_streams):
        if not stream.simulcast_targets:
            warn(("live_streams", i, "simulcast_targets"), "is empty; a publisher will be accepted "
                 "and its stream relayed nowhere")
        for j, target in enumerate(stream.simulcast_targets):
            if is_placeholder(target.stream_key.reveal()):
                warn(("live_streams", i, "simulcast_targets", j, target.given_field()),
                     "is a placeholder, not the platform's stream key: the platform will refuse this target")
            if target.scheme == "rtmps" and not target.tls_verify:
                warn(("live_streams", i, "simulcast_targets", j, "tls_verify"),
                     "certificate checks are off for simulcast target "
                     f"{scrub_part(target.passthrough, secrets)!r}; anyone "
                     "on the network path can pose as the server and take the stream key")
    if mode is not None and inline and stat.S_IMODE(mode) & _OPEN:
        warnings.append(Problem(0, 0, "", (
            f"holds inline stream keys and is readable by group or others (mode {stat.S_IMODE(mode):04o}); "
            "run chmod 600 on it, or move the keys to stream_key_file or stream_key_env")))
    return warnings


def _secrets(config: RelayConfig) -> Iterator[tuple[Loc, SecretSources, Secret, str]]:
    """Every section holding a secret: where, the section, the secret, what it is called."""
    for i, stream in enumerate(config.live_streams):
        yield ("live_streams", i), stream, stream.stream_key, "the ingest stream key"
        for j, target in enumerate(stream.simulcast_targets):
            yield ("live_streams", i, "simulcast_targets", j), target, target.stream_key, "the stream key"
    if config.http.token is not None:
        yield ("http",), config.http, config.http.token, "the token"
    for k, webhook in enumerate(config.webhooks):
        yield ("webhooks", k), webhook, webhook.secret, "the signing key"


def _risk(who: str) -> str:
    if who == "the ingest stream key":
        return ("anyone who guesses it can publish, and the log scrubber cannot tell a key this "
                "short from ordinary text")
    if who == "the stream key":
        return "the log scrubber cannot tell a key this short from ordinary text; use the platform's key"
    return "it can be guessed"


def _open_to_others(path: str) -> bool:
    try:
        return bool(stat.S_IMODE(os.stat(path).st_mode) & _OPEN)
    except OSError:
        return False  # gone since it was read: nothing to warn about
