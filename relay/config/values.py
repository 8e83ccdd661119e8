"""Checks of single config values that need parsing or a file: addresses, URLs, names, keys, TLS.

Each function returns the parsed value or raises ``Invalid`` with a message that
is safe to show: it describes what is wrong and never quotes the value, because
a misplaced stream key can turn up in any field (a key pasted into
stream_key_file, a URL with the key appended). ``relay.config.fields`` turns
these functions into pydantic field types.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, NamedTuple
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "MAX_KEY_FILE", "Address", "Invalid", "KeyFile", "TargetUrl", "app_name", "ca_file", "env_name",
    "host_name", "host_port", "is_loopback", "is_placeholder", "key_from_env", "key_from_file", "live_stream_name",
    "readable", "server_tls", "stream_key", "target_url", "webhook_url",
]

_APP = re.compile(r"[A-Za-z0-9_.~-]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A live stream's name becomes a folder name under the recordings' dir: no
# separator, no leading dot, no "..", so that it can never leave that folder.
_LIVE_STREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_KEY_FILE = 4096  # a key file holds one key; more means the path points elsewhere


class Invalid(Exception):
    """A value failed a check; ``field`` names a sibling field to blame instead, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Address(NamedTuple):
    """A listening address, as written ``HOST:PORT`` (``[IPV6]:PORT``)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class TargetUrl(NamedTuple):
    """A simulcast target's url, split the way an RTMP client needs it."""

    scheme: str
    host: str
    port: int
    app: str
    tc_url: str


class KeyFile(NamedTuple):
    """A key read from a file: where it was (absolute) and what it held."""

    path: str
    key: str


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise Invalid("the port must be a number from 1 to 65535")
    return int(text)


def host_port(value: str) -> Address:
    """``0.0.0.0:1935`` / ``[::]:1935`` / ``localhost:1935`` -> Address(host, port)."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise Invalid("must be [IPV6]:PORT, e.g. [::]:1935")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise Invalid("the part in brackets must be an IPv6 address") from None
    else:
        host, sep, port = value.rpartition(":")
        if not sep or not host:
            raise Invalid("must be HOST:PORT, e.g. 0.0.0.0:1935 ([::]:1935 for IPv6)")
        if ":" in host:
            raise Invalid("an IPv6 address goes in brackets, e.g. [::]:1935")
        try:
            if not _HOSTNAME.fullmatch(host) or host.replace(".", "").isdigit():
                ipaddress.IPv4Address(host)  # all digits and dots: must be a real IPv4
        except ValueError:
            raise Invalid("the host must be an IP address or a host name") from None
    return Address(host, _port(port))


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to anything


def app_name(value: str) -> str:
    """The ingest app: the one path segment publishers put after host:port."""
    if "/" in value:
        raise Invalid("must be one path segment, without slashes (publishers use "
                      "rtmp://HOST:PORT/<app>)")
    if not _APP.fullmatch(value):
        raise Invalid("may hold only letters, digits and - _ . ~")
    return value


def live_stream_name(value: str) -> str:
    """A live stream's name: safe in logs, metrics and as a folder name."""
    if not _LIVE_STREAM_NAME.fullmatch(value) or ".." in value:
        raise Invalid("must be 1 to 64 letters, digits and _ . -, start with a letter or digit, "
                      "and not contain '..' (it names the live stream's recordings folder)")
    return value


def host_name(value: str) -> str:
    """A DNS host name or an IP address, lowercased (how hosts are compared)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value.rstrip(".") if value.endswith(".") and len(value) > 1 else value
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise Invalid("must be a host name (letters, digits, - and dots, e.g. "
                      "a.rtmp.youtube.com) or an IP address, without scheme or port")
    return name.lower()


def _split(url: str, example: str) -> SplitResult:
    if any(c.isspace() or not c.isprintable() for c in url):
        raise Invalid("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Invalid("is not a valid URL; check the host and port") from None
    if "@" in parts.netloc:
        raise Invalid("must not hold user:password@; the url is logged, credentials must not be")
    if parts.scheme in ("rtmp", "rtmps", "http", "https") and not parts.hostname:
        raise Invalid(f"must name a host, e.g. {example}")
    if port == 0:
        raise Invalid("the port must be a number from 1 to 65535")
    return parts


def target_url(url: str) -> TargetUrl:
    """Check and split ``rtmp[s]://host[:port]/app[/more]``; port defaults per scheme."""
    parts = _split(url, "rtmp://live.twitch.tv/app")
    if parts.scheme not in ("rtmp", "rtmps"):
        raise Invalid("must start with rtmp:// or rtmps://")
    # A query string is where keys and tokens hide, and the url is logged.
    if "?" in url or "#" in url:
        raise Invalid("must not have a ?query or #fragment; put the stream key in stream_key")
    app = parts.path.strip("/")
    if not app:
        raise Invalid("must include the app, e.g. rtmp://live.twitch.tv/app")
    if "" in app.split("/"):
        raise Invalid("must not have an empty path segment (//)")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    port = parts.port or (443 if parts.scheme == "rtmps" else 1935)
    return TargetUrl(parts.scheme, host, port, app, f"{parts.scheme}://{netloc}/{app}")


def webhook_url(url: str) -> str:
    """An ``http(s)://`` url that events are POSTed to."""
    parts = _split(url, "https://example.com/hooks/relay")
    if parts.scheme not in ("http", "https"):
        raise Invalid("must start with https:// or http://")
    return url


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a url: a webhook's path and query are often its secret."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "<url>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}"


def env_name(value: str) -> str:
    """The name of an environment variable."""
    # The name is never quoted: a Twitch key (live_123_abc) is a valid name too.
    if not _ENV_NAME.fullmatch(value):
        raise Invalid("must be an environment variable name (letters, digits, _)")
    return value


def stream_key(raw: str) -> str:
    """A key as read from the config, a file or the environment, trimmed and checked."""
    key = raw.strip()  # the trailing newline of a file, an editor's stray space
    if not key:
        raise Invalid("gives an empty key")
    if any(c.isspace() or not c.isprintable() for c in key):
        # Usually a file with two lines, or a key pasted with its label.
        raise Invalid("gives a key with spaces, line breaks or control characters")
    return key


def key_from_file(value: str, environ: Mapping[str, str], base_dir: Path) -> KeyFile:
    """The key in file ``value``; a relative path is under $CREDENTIALS_DIRECTORY or ``base_dir``."""
    # systemd's LoadCredential= puts credentials in $CREDENTIALS_DIRECTORY;
    # outside systemd, a relative path is next to the config file.
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    base, looked_in = (Path(credentials), "$CREDENTIALS_DIRECTORY") if credentials else (
        base_dir, str(base_dir))
    # The path is not quoted in messages: a key pasted here by mistake would leak.
    hint = f" (a relative path is looked up in {looked_in})"
    path = base / value  # an absolute value replaces base in the join
    with _open_regular(path, "the file", hint) as file:
        data = file.read(MAX_KEY_FILE + 1)
    if len(data) > MAX_KEY_FILE:
        raise Invalid(f"the file is over {MAX_KEY_FILE} bytes; it should hold only the key")
    try:
        return KeyFile(os.path.abspath(path), stream_key(data.decode("utf-8")))
    except UnicodeDecodeError:
        raise Invalid("the file is not UTF-8 text") from None


def key_from_env(value: str, environ: Mapping[str, str]) -> str:
    """The key in environment variable ``value``."""
    env_name(value)
    if value not in environ:
        raise Invalid("names an environment variable that is not set")
    return stream_key(environ[value])


def _open_regular(path: Path, what: str, hint: str = "") -> BinaryIO:
    # A regular file only: opening a FIFO blocks, and OpenSSL would read
    # /dev/zero for ever.
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise Invalid(f"{what} is not a regular file{hint}")
        return open(path, "rb")
    except OSError as err:
        raise Invalid(f"cannot read {what}: {err.strerror}{hint}") from None


def readable(path: Path, kind: str) -> str:
    """``path`` as an absolute string, once it is known to be a regular file that opens for reading."""
    _open_regular(path, f"the {kind} file").close()
    return os.path.abspath(path)


class _EncryptedKey(Exception):
    """load_cert_chain asked for a passphrase."""


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL prompts on the terminal, which would hang a daemon.
    raise _EncryptedKey


def _reason(err: ssl.SSLError) -> str:
    return str(err.reason or err.strerror or "not valid PEM")


def ca_file(path: Path) -> str:
    """``path`` as an absolute string, once it is known to hold at least one PEM certificate."""
    name = readable(path, "certificate")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=name)
    except ssl.SSLError as err:
        raise Invalid(f"holds no PEM certificate ({_reason(err)})") from None
    return name


def server_tls(cert: str, key: str) -> None:
    """Check that the RTMPS ingest's certificate chain and key load together."""
    # The certificate alone first, so that a failure can blame the right field.
    try:
        ca_file(Path(cert))
    except Invalid as err:
        raise Invalid(str(err), field="tls_cert_file") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=_no_passphrase)
    except _EncryptedKey:
        raise Invalid("is encrypted with a passphrase, which the relay cannot ask for; "
                      "store it unencrypted with mode 600", field="tls_key_file") from None
    except ssl.SSLError as err:
        raise Invalid(f"is not the PEM private key of tls_cert_file ({_reason(err)})",
                      field="tls_key_file") from None


# Words that mark a value as one to be replaced (the example's own keys carry them), and
# keys that documentation and tutorials publish: anyone can publish with them.
_PLACEHOLDER_WORDS = ("replace-me", "replaceme", "replace_me", "change-me", "changeme", "change_me",
                      "your-stream-key", "your_stream_key", "yourstreamkey", "placeholder")
_PLACEHOLDERS = frozenset({"secret", "password", "streamkey", "stream-key", "stream_key", "test", "example",
                           "key", "live", "mykey", "my-key", "abc123", "123456", "12345678"})
_FILLER = re.compile(r"[x0-]+", re.IGNORECASE)  # xxxx-xxxx-xxxx, 0000-0000


def is_placeholder(key: str) -> bool:
    """True for a key that is a known placeholder: the example's, a tutorial's, or filler."""
    lowered = key.strip().lower()
    return (lowered in _PLACEHOLDERS or any(word in lowered for word in _PLACEHOLDER_WORDS)
            or _FILLER.fullmatch(lowered) is not None)
