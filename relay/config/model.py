"""The config schema: the one description of the file, and the frozen values the relay runs on.

Each class is a mapping of the YAML file; each field's type, default and bounds
are the validation, and its docstring is its description. config/example.yaml
and config/schema.json are generated from these classes
(``python -m relay.config.example``), so adding a field here is all it takes
to document it. The objects that validation returns are what the rest of the
relay reads: attributes are the YAML names, plus a few derived ones
(``listen_host``, ``TargetConfig.tc_url``...). Stream keys are ``Secret``s
whichever way they were given (inline, ``*_file``, ``*_env``).

The sections around the live streams (ingest, HTTP, webhooks, recording) are
in ``relay.config.sections``, those that are only bounded numbers in
``relay.config.policy``. Defaults that a lower level inherits
(``target_defaults`` -> each target, ``health`` and ``recording.dir`` -> each
live stream) are validated first and reach the lower levels through the
``LoadContext``; see ``relay.config.load``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from relay.config.context import load_context
from relay.config.errors import CUSTOM, fail, problem
from relay.config.fields import (
    CaFile,
    EnvSecret,
    FileSecret,
    FromList,
    InlineSecret,
    Label,
    LiveStreamName,
    SecretSources,
    Section,
    TargetUrlText,
    not_null,
    validate_items,
)
from relay.config.policy import HealthPolicy, TargetDefaults, inherit
from relay.config.sections import (
    HttpConfig,
    RecordingConfig,
    RecordingDefaults,
    ServerConfig,
    StateDir,
    WebhookConfig,
)
from relay.config.slate import SlateConfig
from relay.config.values import TargetUrl, is_placeholder, target_url
from relay.secret import Secret

__all__ = ["MAX_SIMULCAST_TARGETS", "LiveStreamConfig", "RelayConfig", "TargetConfig"]

# Mux's Simulcast API allows six targets per live stream; we keep its limit so a
# config can move between the two.
MAX_SIMULCAST_TARGETS = 6


class TargetConfig(SecretSources, TargetDefaults):
    """One simulcast target: a platform's server and app, plus the stream key to publish with."""

    secret_fields: ClassVar[tuple[str, str, str]] = ("stream_key", "stream_key_file", "stream_key_env")
    # The fields a target inherits from target_defaults, unless it sets them.
    inherited: ClassVar[tuple[str, ...]] = tuple(TargetDefaults.model_fields)
    inherited_note: ClassVar[str] = "Each target_defaults field can be set here, for this target only:"

    url: TargetUrlText
    """The platform's rtmp:// or rtmps:// server and app, without the stream key."""
    stream_key_inline: InlineSecret | None = Field(None, alias="stream_key", json_schema_extra=not_null)
    """The platform's stream key. Exactly one of stream_key, stream_key_file, stream_key_env."""
    stream_key_file: FileSecret | None = Field(None, json_schema_extra=not_null)
    """A file holding only the key (relative: in $CREDENTIALS_DIRECTORY, set by systemd's
    LoadCredential=, else next to this file)."""
    stream_key_env: EnvSecret | None = Field(None, json_schema_extra=not_null)
    """An environment variable holding the key."""
    passthrough_label: Label | None = Field(None, alias="passthrough")
    """Label of this target in logs and status; unique within the live stream. Default: the url's
    host."""
    tls_ca_file: CaFile | None = Field(None, examples=["/etc/simulcast-relay/tls/ca.pem"])
    """rtmps:// only: PEM file of the CAs to trust instead of the system's."""
    tls_verify: bool = True
    """rtmps:// only: check the server's certificate. false lets anyone on the network path pose as
    the server and take the stream key."""

    _url: TargetUrl = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any, info: ValidationInfo) -> Any:
        defaults = load_context(info).target_defaults or TargetDefaults()
        return inherit(data, {name: getattr(defaults, name) for name in cls.inherited})

    @field_validator("tls_ca_file", "tls_verify", mode="before")
    @classmethod
    def _rtmps_only(cls, value: Any, info: ValidationInfo) -> Any:
        # Before the CA file is read: on an rtmp:// target it is a mistake whatever it holds.
        url = info.data.get("url")  # url comes first, so it is here when it is valid
        if url is not None and target_url(url).scheme == "rtmp":
            raise PydanticCustomError(CUSTOM, "{message}", {"message": "only applies to rtmps:// urls"})
        return value

    @model_validator(mode="after")
    def _key_not_in_url(self) -> Self:
        if self.stream_key.reveal() in self.url:
            fail([problem(("url",), "contains this target's stream key; the url is only the server "
                          "and app, the key goes in stream_key")])
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._url = target_url(self.url)

    @property
    def stream_key(self) -> Secret:
        found = self.pick(self.stream_key_inline, self.stream_key_file, self.stream_key_env)
        assert found is not None, "validation requires one"
        return found

    @property
    def passthrough(self) -> str:
        return self.passthrough_label or self._url.host

    @property
    def scheme(self) -> str:
        return self._url.scheme

    @property
    def host(self) -> str:
        return self._url.host

    @property
    def port(self) -> int:
        return self._url.port

    @property
    def app(self) -> str:
        return self._url.app

    @property
    def tc_url(self) -> str:
        return self._url.tc_url

    @property
    def publish_url_redacted(self) -> str:
        """The full publish URL as logs may show it: the key replaced by its fingerprint."""
        return f"{self.url.rstrip('/')}/<key sha256:{self.stream_key.fingerprint}>"


def _unique_targets(targets: dict[int, TargetConfig]) -> list[InitErrorDetails]:
    found: list[InitErrorDetails] = []
    labels: dict[str, int] = {}
    publishes: dict[tuple[str, Secret], int] = {}
    for i, target in targets.items():
        if target.passthrough in labels:
            found.append(problem((i, "passthrough"), "duplicate passthrough label (also "
                                 f"simulcast_targets[{labels[target.passthrough]}]); give each "
                                 "target its own"))
        labels.setdefault(target.passthrough, i)
        publish = (target.tc_url, target.stream_key)
        if publish in publishes:
            found.append(problem((i,), "same url and stream key as "
                                 f"simulcast_targets[{publishes[publish]}]; the server takes only one"))
        publishes.setdefault(publish, i)
    return found


class LiveStreamConfig(SecretSources):
    """One stream accepted at the ingest under its own stream key, and where it is relayed."""

    secret_fields: ClassVar[tuple[str, str, str]] = ("stream_key", "stream_key_file", "stream_key_env")
    # The fields a live stream inherits from the top level, field by field, unless it sets them.
    inherited: ClassVar[tuple[str, ...]] = ("health", "reconnect_slate")

    name: LiveStreamName
    """Unique name of the live stream in logs, status and metrics, and the folder of its
    recordings: letters, digits, _ . -"""
    stream_key_inline: InlineSecret | None = Field(None, alias="stream_key", json_schema_extra=not_null)
    """The key the publisher uses (OBS: Stream Key). Exactly one of stream_key, stream_key_file,
    stream_key_env. Make it long and random, e.g. `openssl rand -hex 24`."""
    stream_key_file: FileSecret | None = Field(None, json_schema_extra=not_null)
    """A file holding only the key (relative: in $CREDENTIALS_DIRECTORY, else next to this file)."""
    stream_key_env: EnvSecret | None = Field(None, json_schema_extra=not_null)
    """An environment variable holding the key."""
    reconnect_window: float = Field(60.0, ge=0, le=3600)
    """Seconds the targets stay connected after the publisher drops, so that a network blip does
    not end the broadcast on every platform; 0 disables."""
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    """Automatic recording of this live stream."""
    reconnect_slate: SlateConfig = SlateConfig()
    """The slate the platforms see while the publisher is away; each field not set here is taken
    from reconnect_slate."""
    health: HealthPolicy = HealthPolicy()
    """Health warnings of this live stream; each field not set here is taken from health."""
    simulcast_targets: Annotated[tuple[TargetConfig, ...], FromList] = Field(
        json_schema_extra={"maxItems": MAX_SIMULCAST_TARGETS})
    """Where the stream is relayed: at most 6 targets (the limit of Mux's Simulcast API)."""

    @model_validator(mode="after")
    def _key_not_a_placeholder(self) -> Self:
        # The example's ingest key is published: a relay listening with it is open to anyone.
        if is_placeholder(self.stream_key.reveal()):
            fail([problem((self.given_field(),), "is a placeholder (the example's, or another well-known "
                          "one) that anyone could publish with; put a long random key here, e.g. the output "
                          "of `openssl rand -hex 24`")])
        return self

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any, info: ValidationInfo) -> Any:
        context = load_context(info)
        return inherit(data, {"health": context.health or HealthPolicy(), "recording": {},
                              "reconnect_slate": context.reconnect_slate or SlateConfig()})

    @field_validator("simulcast_targets", mode="wrap")
    @classmethod
    def _targets(cls, value: Any, handler: ValidatorFunctionWrapHandler,
                 info: ValidationInfo) -> tuple[TargetConfig, ...]:
        if not isinstance(value, (list, tuple)):
            return handler(value)  # type: ignore[no-any-return]
        valid, found = validate_items(TargetConfig, value, info)
        if len(value) > MAX_SIMULCAST_TARGETS:
            found.append(problem((MAX_SIMULCAST_TARGETS,), (
                f"at most {MAX_SIMULCAST_TARGETS} simulcast targets per live stream (the limit "
                f"Mux's Simulcast API sets); this live stream has {len(value)}")))
        found += _unique_targets(valid)
        if found:
            fail(found)
        return tuple(valid.values())

    @property
    def stream_key(self) -> Secret:
        found = self.pick(self.stream_key_inline, self.stream_key_file, self.stream_key_env)
        assert found is not None, "validation requires one"
        return found


def _unique_live_streams(items: list[Any] | tuple[Any, ...],
                         valid: dict[int, LiveStreamConfig]) -> list[InitErrorDetails]:
    found: list[InitErrorDetails] = []
    # Names from the raw items: a live stream with a broken target still has its name.
    names: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name in names:
            found.append(problem((i, "name"), f"duplicate live stream name (also live_streams[{names[name]}])"))
        elif isinstance(name, str):
            names[name] = i
    keys: dict[Secret, int] = {}
    for i, stream in valid.items():
        if stream.stream_key in keys:  # Secret equality is constant-time
            found.append(problem((i, stream.given_field()), f"same stream key as live_streams"
                                 f"[{keys[stream.stream_key]}]; each live stream needs its own"))
        keys.setdefault(stream.stream_key, i)
    return found


class RelayConfig(Section):
    """simulcast-relay's config: one stream in per live stream, up to six platforms out."""

    server: ServerConfig = ServerConfig()
    """The ingest: where OBS, ffmpeg or any RTMP encoder publishes."""
    live_streams: Annotated[tuple[LiveStreamConfig, ...], FromList]
    """The streams accepted at the ingest, each under its own stream key. May be empty ([]) only
    when an http.access_tokens entry can write: an app then makes them through /video/v1."""
    target_defaults: TargetDefaults = TargetDefaults()
    """Policies of every simulcast target, unless the target sets its own."""
    health: HealthPolicy = HealthPolicy()
    """When a live stream is reported unhealthy; a live stream's own health overrides it."""
    reconnect_slate: SlateConfig = SlateConfig()
    """The reconnect slate of every live stream; a live stream's own reconnect_slate overrides it."""
    recording: RecordingDefaults = Field(default_factory=RecordingDefaults)
    """Recording settings shared by every live stream (each turns recording on in its own
    recording section)."""
    http: HttpConfig = HttpConfig()
    """The status API (JSON), Prometheus metrics and status page."""
    webhooks: Annotated[tuple[WebhookConfig, ...], FromList] = ()
    """Addresses that status changes are POSTed to."""
    state_dir: StateDir = Field(None, validate_default=True)
    """Where the relay keeps what the /video/v1 API creates (relay.sqlite3, mode 0600); null:
    $STATE_DIRECTORY under systemd, else this file's folder."""

    _source: str = PrivateAttr("config")
    _base_dir: str = PrivateAttr("")
    _warnings: tuple[str, ...] = PrivateAttr(())

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        return inherit(data, {"recording": {}})  # its dir default depends on the environment

    @field_validator("live_streams", mode="wrap")
    @classmethod
    def _live_streams(cls, value: Any, handler: ValidatorFunctionWrapHandler,
                      info: ValidationInfo) -> tuple[LiveStreamConfig, ...]:
        if not isinstance(value, (list, tuple)):
            return handler(value)  # type: ignore[no-any-return]
        valid, found = validate_items(LiveStreamConfig, value, info)
        found += _unique_live_streams(value, valid)
        if found:
            fail(found)
        return tuple(valid.values())

    @model_validator(mode="after")
    def _something_to_publish_to(self) -> Self:
        # A relay with no live stream is one an app fills through the API, or a mistake.
        if not self.live_streams and not any("write" in t.permissions for t in self.http.access_tokens):
            fail([problem(("live_streams",), "at least one live stream is required (or an http.access_tokens "
                          "entry with write permission, to create live streams through /video/v1)")])
        return self

    def model_post_init(self, context: Any, /) -> None:
        from relay.config.context import LoadContext

        if isinstance(context, LoadContext):
            self._source = context.source
            self._base_dir = str(context.base_dir)

    @property
    def source(self) -> str:
        """The file (or name) the config was read from, as given."""
        return self._source

    @property
    def base_dir(self) -> str:
        """The config file's folder: where relative paths in it start."""
        return self._base_dir

    @property
    def warnings(self) -> tuple[str, ...]:
        """Things that work but should not be so (short keys, open file modes...), for the caller to show."""
        return self._warnings

    def with_warnings(self, warnings: tuple[str, ...]) -> RelayConfig:
        """This config with ``warnings`` attached (for the loader)."""
        copy = self.model_copy()
        copy._warnings = warnings
        return copy

    def all_secrets(self) -> tuple[Secret, ...]:
        """Every key in the config (ingest, targets, HTTP token, webhook secrets), for ``redact``."""
        keys: list[Secret] = []
        for live_stream in self.live_streams:
            keys.append(live_stream.stream_key)
            keys.extend(target.stream_key for target in live_stream.simulcast_targets)
        if self.http.token is not None:
            keys.append(self.http.token)
        keys.extend(access.secret for access in self.http.access_tokens)
        keys.extend(webhook.secret for webhook in self.webhooks)
        return tuple(keys)

    def find_live_stream(self, stream_name: str) -> LiveStreamConfig | None:
        """The live stream whose ingest key is ``stream_name``, compared in constant time."""
        found: LiveStreamConfig | None = None
        # No early exit: the time taken must not tell which live stream matched.
        for live_stream in self.live_streams:
            if live_stream.stream_key.matches(stream_name):
                found = live_stream
        return found
