"""A reload of one live stream's targets: which run on, which go, which are new (the plan), and
in what order a replaced target's connection may open.

Planned without touching anything that runs (relay/reload.py applies every live stream's
plan together, all or nothing):
- a target whose settings did not change keeps running, even under a new `passthrough`
  (a label: its connection is kept and only its name changes);
- a changed target is a new Target; if it publishes to the same url and key as one that
  goes, it connects only once that one has unpublished (`predecessor`): a platform
  refuses a second publisher on one key;
- a changed ingest stream key revokes the old one (`key_changed`: the live stream cuts
  its publisher off).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from relay.config import LiveStreamConfig, TargetConfig
from relay.targets.supervisor import Target


@dataclass
class Reconfiguration:
    """A reload of one live stream, built and not yet applied."""

    config: LiveStreamConfig
    targets: list[Target]  # the targets after the reload, in config order
    new: list[Target] = field(default_factory=list)  # made for this reload: started if the stream is active
    retired: list[Target] = field(default_factory=list)  # current targets that go
    # Current targets that stay, each with its config after the reload (the same but for the label).
    relabelled: list[tuple[Target, TargetConfig]] = field(default_factory=list)
    key_changed: bool = False


def plan(current: list[Target], old: LiveStreamConfig, config: LiveStreamConfig,
         make: Callable[[TargetConfig], Target]) -> Reconfiguration:
    """What reloading `old` as `config` does to the `current` targets; `make` builds a new one."""
    unchanged = [(_settings(t.config), t) for t in current]
    reconfiguration = Reconfiguration(config, [], key_changed=config.stream_key != old.stream_key)
    kept: list[Target] = []
    for target_config in config.simulcast_targets:
        settings = _settings(target_config)
        target = next((t for s, t in unchanged if s == settings and not any(t is k for k in kept)), None)
        if target is not None:
            kept.append(target)
            reconfiguration.targets.append(target)
            reconfiguration.relabelled.append((target, target_config))
            continue
        target = make(target_config)
        reconfiguration.targets.append(target)
        reconfiguration.new.append(target)
    reconfiguration.retired = [t for t in current if not any(t is k for k in kept)]
    for target in reconfiguration.new:
        target.predecessor = next((old_target for old_target in reconfiguration.retired
                                   if _destination(old_target.config) == _destination(target.config)), None)
    return reconfiguration


def _settings(config: TargetConfig) -> TargetConfig:
    """A target's config less its label: what, when it changes, needs a new connection."""
    return config.model_copy(update={"passthrough_label": None})


def _destination(config: TargetConfig) -> tuple[str, object]:
    """Where a target publishes: two connections here at once would be two publishers on one key."""
    return config.url, config.stream_key
