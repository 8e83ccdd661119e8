"""Command line: `relay run --config FILE`, `relay check-config FILE`, `relay status`, `relay reload`,
`relay --version`."""

from __future__ import annotations

import argparse
import sys

from relay import __version__
from relay.config import ConfigError, load_config, summarize
from relay.fanout import accel as fanout_accel
from relay.rtmp import accel as rtmp_accel

EXIT_CONFIG = 2


def per_tag_path() -> tuple[bool, str]:
    """Whether the compiled twins of the per-tag path run (relay/rtmp/accel.py), and the words for it."""
    if rtmp_accel.COMPILED and fanout_accel.COMPILED:
        return True, "compiled per-tag path (Cython)"
    return False, f"pure-Python per-tag path: {rtmp_accel.WHY_PURE or 'the fan-out twin is not built'}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description="RTMP simulcast relay: one stream in, many out.")
    parser.add_argument("--version", action="version", version=f"simulcast-relay {__version__}, {per_tag_path()[1]}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the relay")
    run.add_argument("--config", "-c", required=True, help="YAML config file")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="auto", choices=["auto", "json", "console"],
                     help="auto: JSON under systemd or when stderr is not a terminal")
    check = sub.add_parser("check-config", help="validate a config file and summarize it (keys redacted)")
    check.add_argument("config", nargs="?", help="YAML config file")
    check.add_argument("--config", "-c", dest="config_option", help="YAML config file (same as the argument)")
    for name, text in (("status", "print every live stream and target of the running relay (exit 1 when a "
                                  "target of an active stream is errored)"),
                       ("reload", "ask the running relay to reload its config file, and print the outcome")):
        client = sub.add_parser(name, help=text, description=text)
        client.add_argument("--config", "-c", help="the relay's config file, to find its HTTP API and token "
                                                    "(default: /etc/simulcast-relay/relay.yaml)")
        client.add_argument("--url", help="the relay's HTTP API, e.g. http://127.0.0.1:8935 (instead of --config)")
        client.add_argument("--token-file", help="a file holding the HTTP token (instead of the config's)")
        client.add_argument("--json", action="store_true", help="print the API's JSON answer")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `relay` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "check-config":
        path = args.config or args.config_option
        if not path:
            parser.error("check-config needs a config file")
        try:
            config = load_config(path)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_CONFIG
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(summarize(config))
        return 0
    if args.command in ("status", "reload"):
        from relay.api import client

        try:
            base, token = client.endpoint(args.config, args.url, args.token_file)
            if args.command == "status":
                return client.status(base, token, args.json)
            return client.reload(base, token, args.json)
        except (client.ClientError, OSError) as exc:
            print(f"relay {args.command}: {exc}", file=sys.stderr)
            return exc.code if isinstance(exc, client.ClientError) else client.EXIT_CONFIG
    from relay.runtime import logs  # the daemon's imports (structlog, asyncio glue) only when running

    logs.configure(args.log_level, json={"auto": None, "json": True, "console": False}[args.log_format])
    compiled, path = per_tag_path()
    if not compiled:
        logs.get_logger().info("pure_python_path", detail=path)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        logs.get_logger().error("config_invalid", problems=list(exc.problems))
        return EXIT_CONFIG
    from relay.app import run

    try:
        return run(config, args.config)
    except Exception:  # a bug: its traceback goes through the log, where keys are scrubbed
        logs.get_logger().exception("relay_crashed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
