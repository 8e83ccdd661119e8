"""The config: one schema, from a YAML file to the frozen values the relay runs on.

Theory of operation. ``load_config`` reads the file (``load``), parses it
without expanding anchors, aliases or merge keys and notes where every value
was (``yamlsource``; a syntax error is said in plain words by ``yamlerrors``,
from the shape of the lines around it, ``yamllines``),
then validates it against the schema (``model``,
``sections``, ``policy``, built from the value types of ``fields`` and the
checks of ``values``). Everything the checks need from outside the file (environment,
the file's folder, PATH, inherited sections) travels in one ``LoadContext``
per load (``context``), so loading is pure and thread-safe. pydantic's errors
become one line each, ``relay.yaml:14:7: path: what is wrong``, that never
quote a value (``messages``); a valid config may still carry warnings
(``lint``). The same schema generates config/example.yaml and
config/schema.json (``example``), ``summarize`` prints a valid config with
keys as fingerprints, and ``publish_guide`` says what to put in an encoder once
the relay listens (``guide``).

Stream keys are ``Secret``s from the moment they are read; ``redact`` scrubs
them from text that might hold one.
"""

from __future__ import annotations

from relay.config.errors import ConfigError
from relay.config.guide import Bound, Guide, publish_guide
from relay.config.load import load_config, parse_config
from relay.config.model import MAX_SIMULCAST_TARGETS, LiveStreamConfig, RelayConfig, TargetConfig
from relay.config.policy import (
    HealthPolicy,
    IngestLimits,
    QueuePolicy,
    ReconnectPolicy,
    TargetDefaults,
    TargetLimits,
    Timeouts,
)
from relay.config.sections import (
    HttpConfig,
    RecordingConfig,
    RecordingDefaults,
    ServerConfig,
    WebhookConfig,
)
from relay.config.slate import SlateConfig
from relay.config.summary import summarize
from relay.secret import Secret, redact

__all__ = [
    "MAX_SIMULCAST_TARGETS",
    "Bound",
    "ConfigError",
    "Guide",
    "HealthPolicy",
    "HttpConfig",
    "IngestLimits",
    "LiveStreamConfig",
    "QueuePolicy",
    "ReconnectPolicy",
    "RecordingConfig",
    "RecordingDefaults",
    "RelayConfig",
    "Secret",
    "ServerConfig",
    "SlateConfig",
    "TargetConfig",
    "TargetDefaults",
    "TargetLimits",
    "Timeouts",
    "WebhookConfig",
    "load_config",
    "parse_config",
    "publish_guide",
    "redact",
    "summarize",
]
