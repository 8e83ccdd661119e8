"""Mux's error answers: `{"error": {"type": ..., "messages": [...]}}` with Mux's HTTP codes."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

# Mux's status codes and error types; 409 is ours (a live stream of the config file is read-only).
TYPES = {400: "invalid_parameters", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
         408: "request_timeout", 413: "too_large", 429: "too_many_requests", 500: "internal_error", 503: "unavailable"}


class MuxError(Exception):
    """A request that gets an error answer; each message names the field it is about."""

    def __init__(self, status: int, messages: str | Sequence[str]) -> None:
        self.status = status
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__(*self.messages)

    def response(self) -> web.Response:
        """The answer, in Mux's shape."""
        return error_response(self.status, self.messages)


def error_response(status: int, messages: Sequence[str]) -> web.Response:
    """`{"error": {"type", "messages"}}` with `status`."""
    body = {"error": {"type": TYPES.get(status, "error"), "messages": list(messages)}}
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def not_found(what: str = "live stream") -> MuxError:
    """Mux's 404 for an id it does not know."""
    return MuxError(404, f"no {what} with that id")
