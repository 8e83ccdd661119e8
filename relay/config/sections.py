"""The sections around the live streams: the ingest, HTTP, webhooks, recording.

Like every section, each field's docstring is its description in
config/example.yaml and config/schema.json; see ``relay.config.model``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Field, PlainValidator, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails

from relay.config.context import load_context
from relay.config.errors import fail, problem
from relay.config.fields import (
    AccessTokenId,
    AppName,
    CertificateFile,
    EnvSecret,
    FileSecret,
    FromList,
    HostName,
    InlineSecret,
    ListenAddress,
    PrivateKeyFile,
    SecretSources,
    Section,
    WebhookUrl,
    not_null,
    text_value,
)
from relay.config.policy import GIB, KIB, MIB, HttpLimits, IngestLimits
from relay.config.values import Address, Invalid, is_loopback, is_placeholder, server_tls
from relay.secret import Secret

__all__ = ["AccessToken", "HttpConfig", "StateDir", "RecordingConfig", "RecordingDefaults", "ServerConfig",
           "WebhookConfig"]

PIB = 1024 * 1024 * GIB


class ServerConfig(Section):
    """The ingest: where OBS, ffmpeg or any RTMP encoder publishes."""

    listen: ListenAddress = Address("0.0.0.0", 1935)
    """HOST:PORT of the plain RTMP ingest ("[::]:1935" listens on IPv6)."""
    app: AppName = "live"
    """The app publishers put after host:port (rtmp://HOST:1935/<app>): one path segment."""
    tls_listen: ListenAddress | None = Field(None, examples=["0.0.0.0:1936"])
    """HOST:PORT of an RTMPS ingest (rtmps://HOST:1936/<app>); needs tls_cert_file and
    tls_key_file."""
    tls_cert_file: CertificateFile | None = Field(
        None, examples=["/etc/simulcast-relay/tls/fullchain.pem"])
    """PEM certificate chain of the RTMPS ingest."""
    tls_key_file: PrivateKeyFile | None = Field(None, examples=["/etc/simulcast-relay/tls/privkey.pem"])
    """PEM private key of the RTMPS ingest, unencrypted (chmod 600)."""
    limits: IngestLimits = IngestLimits()
    """Limits against hostile or broken peers."""

    @classmethod
    def check_written(cls, data: dict[str, Any]) -> tuple[list[InitErrorDetails], dict[str, Any]]:
        found, data = super().check_written(data)
        files = ("tls_cert_file", "tls_key_file")
        if data.get("tls_listen") is None:
            found += [problem((name,), "only used with tls_listen; set it or remove this")
                      for name in files if data.get(name) is not None]
        else:
            found += [problem((name,), "required field missing (tls_listen needs it)")
                      for name in files if data.get(name) is None]
        return found, data

    @model_validator(mode="after")
    def _tls(self) -> Self:
        found: list[InitErrorDetails] = []
        if self.tls_listen is not None:
            if self.tls_listen == self.listen:
                found.append(problem(("tls_listen",), "must differ from server.listen"))
            if self.tls_cert_file is not None and self.tls_key_file is not None:
                try:
                    server_tls(self.tls_cert_file, self.tls_key_file)
                except Invalid as err:
                    found.append(problem((err.field or "tls_key_file",), str(err)))
        if found:
            fail(found)
        return self

    @property
    def listen_host(self) -> str:
        return self.listen.host

    @property
    def listen_port(self) -> int:
        return self.listen.port

    @property
    def tls_listen_host(self) -> str | None:
        return self.tls_listen.host if self.tls_listen else None

    @property
    def tls_listen_port(self) -> int | None:
        return self.tls_listen.port if self.tls_listen else None


MAX_ACCESS_TOKENS = 64


class AccessToken(SecretSources):
    """A credential of the /video/v1 management API (Mux's access token): HTTP Basic with the id as
    user name and the secret as password, as Mux's SDKs send it."""

    secret_fields: ClassVar[tuple[str, str, str]] = ("secret", "secret_file", "secret_env")

    id: AccessTokenId = Field(examples=["my-app"])
    """The token's id (HTTP Basic user name): 1 to 128 printable characters, no colon or space."""
    secret_inline: InlineSecret | None = Field(None, alias="secret", json_schema_extra=not_null,
                                               examples=["REPLACE-ME-with-a-long-random-secret"])
    """The token's secret (HTTP Basic password), inline. Make it long and random, e.g.
    `openssl rand -hex 24`."""
    secret_file: FileSecret | None = Field(None, json_schema_extra=not_null, examples=["api-secret"])
    """Or: a file holding the secret."""
    secret_env: EnvSecret | None = Field(None, json_schema_extra=not_null, examples=["RELAY_API_SECRET"])
    """Or: an environment variable holding the secret."""
    permissions: Annotated[tuple[Literal["read", "write"], ...], FromList] = Field(
        ("read",), min_length=1, max_length=2)
    """What the token may do: [read] lists and gets; [read, write] also creates, changes and
    deletes live streams and targets, and is shown their stream keys."""

    @model_validator(mode="after")
    def _not_a_placeholder(self) -> Self:
        if is_placeholder(self.secret.reveal()):
            fail([problem((self.given_field(),), "is a placeholder (the example's, or another well-known "
                          "one) that anyone could use; put a long random secret here, e.g. `openssl rand -hex 24`")])
        return self

    @property
    def secret(self) -> Secret:
        found = self.pick(self.secret_inline, self.secret_file, self.secret_env)
        assert found is not None, "validation requires one"
        return found

    @property
    def can_write(self) -> bool:
        return "write" in self.permissions


class HttpConfig(SecretSources):
    """The status API, metrics and status page."""

    secret_fields: ClassVar[tuple[str, str, str]] = ("token", "token_file", "token_env")
    secret_required: ClassVar[bool] = False

    listen: ListenAddress | None = Address("127.0.0.1", 8935)
    """HOST:PORT of the HTTP server; null turns HTTP off. Listening beyond this machine needs a
    token."""
    token_inline: InlineSecret | None = Field(None, alias="token", json_schema_extra=not_null,
                                              examples=["REPLACE-ME-with-a-long-random-token"])
    """Bearer token that HTTP clients must send (Authorization: Bearer ...), inline."""
    token_file: FileSecret | None = Field(None, json_schema_extra=not_null,
                                          examples=["http-token"])
    """Or: a file holding the token (relative: in $CREDENTIALS_DIRECTORY, else next to this file)."""
    token_env: EnvSecret | None = Field(None, json_schema_extra=not_null,
                                        examples=["RELAY_HTTP_TOKEN"])
    """Or: an environment variable holding the token."""
    max_request_bytes: int = Field(64 * KIB, ge=KIB, le=16 * MIB)
    """Largest HTTP request accepted, in bytes."""
    request_timeout: float = Field(10.0, ge=1, le=300)
    """Seconds for a client to send its request."""
    allowed_hosts: Annotated[tuple[HostName, ...], FromList] = Field((), examples=[["relay.example.com"]])
    """Host names clients reach the relay by (the Host header), besides IP addresses, localhost
    and the listen host; a request naming another host is refused (DNS rebinding)."""
    limits: HttpLimits = HttpLimits()
    """Limits against hostile HTTP clients."""
    access_tokens: Annotated[tuple[AccessToken, ...], FromList] = Field(
        (), json_schema_extra={"maxItems": MAX_ACCESS_TOKENS})
    """Credentials of the /video/v1 management API (Mux's live stream and simulcast target API);
    none: that API answers 401. At most 64."""
    max_api_live_streams: int = Field(100, ge=1, le=10_000)
    """Live streams the /video/v1 API may create in all (each holds up to 6 target connections)."""

    @model_validator(mode="after")
    def _unique_access_tokens(self) -> Self:
        found: list[InitErrorDetails] = []
        if len(self.access_tokens) > MAX_ACCESS_TOKENS:
            found.append(problem(("access_tokens",), f"at most {MAX_ACCESS_TOKENS} access tokens"))
        seen: dict[str, int] = {}
        for i, token in enumerate(self.access_tokens):
            if token.id in seen:
                found.append(problem(("access_tokens", i, "id"),
                                     f"duplicate id (also access_tokens[{seen[token.id]}])"))
            seen.setdefault(token.id, i)
        if found:
            fail(found)
        return self

    @model_validator(mode="after")
    def _guarded(self) -> Self:
        if self.listen is not None and not is_loopback(self.listen.host) and self.token is None:
            fail([problem(("listen",), "listens beyond this machine without a token; set token, "
                          "token_file or token_env, or listen on 127.0.0.1")])
        if self.token is not None and is_placeholder(self.token.reveal()):
            fail([problem((self.given_field(),), "is a placeholder (the example's, or another well-known one) "
                          "that anyone could use; put a long random token here, e.g. `openssl rand -hex 24`")])
        return self

    @property
    def token(self) -> Secret | None:
        return self.pick(self.token_inline, self.token_file, self.token_env)

    @property
    def listen_host(self) -> str | None:
        return self.listen.host if self.listen else None

    @property
    def listen_port(self) -> int | None:
        return self.listen.port if self.listen else None


class WebhookConfig(SecretSources):
    """An address that status changes are POSTed to, signed as Mux signs its webhooks."""

    secret_fields: ClassVar[tuple[str, str, str]] = ("secret", "secret_file", "secret_env")

    url: WebhookUrl
    """https:// (or http://) address to POST events to; no user:password@."""
    secret_inline: InlineSecret | None = Field(None, alias="secret", json_schema_extra=not_null,
                                               examples=["REPLACE-ME-with-the-signing-key"])
    """Key that signs each delivery (Mux-Signature header, HMAC-SHA256), inline."""
    secret_file: FileSecret | None = Field(None, json_schema_extra=not_null, examples=["webhook.key"])
    """Or: a file holding the signing key."""
    secret_env: EnvSecret | None = Field(None, json_schema_extra=not_null,
                                         examples=["RELAY_WEBHOOK_SECRET"])
    """Or: an environment variable holding the signing key."""
    timeout: float = Field(10.0, ge=1, le=120)
    """Seconds per delivery attempt."""
    max_queue: int = Field(1000, ge=1, le=100_000)
    """Undelivered events kept; past it, the oldest are dropped (and counted)."""

    @property
    def secret(self) -> Secret:
        found = self.pick(self.secret_inline, self.secret_file, self.secret_env)
        assert found is not None, "validation requires one"
        return found


def _recordings_dir(value: object, info: ValidationInfo) -> str:
    context = load_context(info)
    if value is None:
        state = context.environ.get("STATE_DIRECTORY", "").split(":")[0]
        # systemd's StateDirectory= sets it; elsewhere, next to the config file.
        return os.path.join(os.path.abspath(state) if state else str(context.base_dir), "recordings")
    return os.path.abspath(context.path(text_value(value)))


def _live_stream_dir(value: object, info: ValidationInfo) -> str:
    context = load_context(info)
    if value is None:
        if context.recording is not None:
            return context.recording.dir
        return _recordings_dir(None, info)
    return _recordings_dir(value, info)


def _state_dir(value: object, info: ValidationInfo) -> str:
    context = load_context(info)
    if value is None:
        state = context.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return os.path.abspath(state) if state else str(context.base_dir)
    return os.path.abspath(context.path(text_value(value)))


StateDir = Annotated[str, PlainValidator(_state_dir, json_schema_input_type=str | None)]
RecordingsDir = Annotated[str, PlainValidator(_recordings_dir, json_schema_input_type=str | None)]
LiveStreamDir = Annotated[str, PlainValidator(_live_stream_dir, json_schema_input_type=str | None)]


class RecordingDefaults(Section):
    """Recording settings shared by every live stream."""

    dir: RecordingsDir = Field(None, validate_default=True)
    """Where recordings go, each live stream's in a subfolder named after it; null:
    $STATE_DIRECTORY/recordings under systemd, else "recordings" next to this file. Relative paths
    start from this file's folder."""
    max_remux_jobs: int = Field(1, ge=1, le=16)
    """ffmpeg remuxes (format: mp4) run at once."""
    max_buffer_bytes: int = Field(32 * MIB, ge=MIB, le=GIB)
    """Bytes waiting for the disk before a recording is stopped with an error."""


class RecordingConfig(Section):
    """Automatic recording of one live stream: a file per publish session."""

    enabled: bool = False
    """Record every publish session of this live stream."""
    dir: LiveStreamDir = Field(None, validate_default=True)
    """Where this live stream's recordings go (in a subfolder named after it); null:
    recording.dir."""
    format: Literal["flv", "mp4"] = "flv"
    """flv is written as it arrives; mp4 is remuxed from it when the session ends (needs ffmpeg)."""
    keep_last: int | None = Field(None, ge=1, le=100_000)
    """Keep this many finished recordings of this live stream, deleting older ones; null: all."""
    max_age: float | None = Field(None, ge=60, le=315_360_000)
    """Delete finished recordings older than this many seconds; null: never."""
    max_total_size: int | None = Field(None, ge=MIB, le=PIB)
    """Delete the oldest finished recordings while they add up to more bytes than this; null: no
    limit."""

    @model_validator(mode="after")
    def _ffmpeg(self, info: ValidationInfo) -> Self:
        if self.enabled and self.format == "mp4" and load_context(info).which("ffmpeg") is None:
            fail([problem(("format",), "mp4 needs ffmpeg, which is not on PATH; install it or "
                          "record flv")])
        return self
