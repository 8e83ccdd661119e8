"""The root of every error the project raises."""

from __future__ import annotations


class RelayError(Exception):
    """Base class of every error raised by simulcast-relay."""
