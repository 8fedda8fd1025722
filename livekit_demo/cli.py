"""The command line: `livekit-demo serve | push | hash-password | lab | check | lite` (also `python -m livekit_demo`)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .exceptions import LivekitDemoError
from .passwords import hash_password
from .settings import Settings

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livekit-demo", description="An AppServer for interactive live rooms.")
    parser.add_argument("--version", action="version", version=f"livekit_demo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the AppServer for real clients")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for phones on your network)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--config", help="a JSON or YAML settings file with the original's keys")
    serve.add_argument("--storage", help="'memory', a TinyDB file path ending in .json, or a database URL/DSN")
    serve.add_argument("--workers", type=int, help="processes to run (more than 1 needs SQL storage)")
    serve.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"))
    serve.add_argument("--edge", action="store_true", help="also run the local media edge: RTMP ingest, HTTP-FLV, HLS (SPEC 13)")
    serve.add_argument("--rtmp-port", type=int, help="the edge's RTMP port (default 1935; 0 picks a free one)")
    serve.set_defaults(run=_serve)

    lab = commands.add_parser(
        "lab", help="open JupyterLab on the teaching notebooks",
        usage="livekit-demo lab [-h] [--dir DIR] [JUPYTERLAB ARGUMENTS ...]",
        epilog="Any other arguments go to JupyterLab, e.g. livekit-demo lab --no-browser --port 8888 "
        "(see python -m jupyterlab --help-all). As root, --allow-root is added for you.",
    )  # fmt: skip
    lab.add_argument("--dir", default=None, help="where to put your copies of the notebooks (default ./livekit_demo_notebooks)")
    lab.set_defaults(run=_lab)

    lite = commands.add_parser("lite", help="build a JupyterLite site: the notebooks and the server in the browser, no install")
    lite.add_argument("dir", help="the folder to build the site into (an earlier build there is replaced)")
    lite.add_argument("--check", action="store_true", help="only check the site already in DIR: fail if it would fetch from outside itself")
    lite.add_argument("--cache", default=None, help="where the Pyodide runtime and the wheels are kept between builds")
    lite.add_argument("--offline", action="store_true", help="fetch nothing: use only what the cache holds")
    lite.set_defaults(run=_lite)

    hasher = commands.add_parser("hash-password", help="make a password hash for auth.users")
    hasher.add_argument("--stdin", action="store_true", help="read the password from standard input (for scripts)")
    hasher.set_defaults(run=_hash_password)

    pusher = commands.add_parser("push", help="push a test pattern (moving picture and a tone) to a room, until Ctrl-C")
    pusher.add_argument("room_id", metavar="ROOM_ID", help="the room to push to (you must be its anchor)")
    pusher.add_argument("--url", default="http://127.0.0.1:8080", help="the AppServer's base URL (default http://127.0.0.1:8080)")
    pusher.add_argument("--username", default="demo", help="who logs in: the room's anchor (default demo)")
    pusher.add_argument("--password", help="that user's password (default: the username, the demo login rule)")
    pusher.set_defaults(run=_push)

    checker = commands.add_parser("check", help="check any AppServer against the contract")
    checker.add_argument("url", help="the AppServer's base URL, e.g. http://127.0.0.1:8080 (http:// may be left out)")
    checker.add_argument("--username", default=None, help="a user who may log in (default: 'conformance', which a demo server admits)")
    checker.add_argument("--password", default=None, help="that user's password (default: the username, the demo login rule)")
    checker.add_argument("--second-user", type=_name_and_password, metavar="NAME:PASS", help="another user, for identity checks (default: a demo login)")
    checker.add_argument("--keys", metavar="CONFIG", help="the server's JSON/YAML config, to verify URL signatures")
    checker.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    checker.add_argument("--only", metavar="GLOB", help="only checks whose id matches, e.g. 'lifecycle.*' (comma-separated globs)")
    checker.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    checker.set_defaults(run=_check)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .serving import serve

    server = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers), ("log_level", args.log_level)) if v is not None}
    overrides: dict[str, Any] = {"server": server}
    if args.storage:
        overrides["storage"] = args.storage
    edge: dict[str, Any] = {"enabled": True} if args.edge else {}
    if args.rtmp_port is not None:
        edge["rtmp_port"] = args.rtmp_port
    if edge:
        overrides["edge"] = edge
    serve(Settings.build(args.config, **overrides))
    return 0


def _lab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .lab import DEFAULT_FOLDER, run_lab

    return run_lab(Path(args.dir or DEFAULT_FOLDER), args.passed_on)


def _hash_password(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not sys.stdin.isatty():
        # getpass would read the pipe with a warning, then hit its end at "Again:".
        print("error: the password comes from a pipe: add --stdin (echo PASSWORD | livekit-demo hash-password --stdin)", file=sys.stderr)
        return 2
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Again: ")
        except EOFError:
            print("\nerror: no password given (the input ended); run it again and type one, or pipe one in with --stdin", file=sys.stderr)
            return 2
        if again != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 2
    if not password:
        print("error: empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def _push(args: argparse.Namespace) -> int:
    import time

    from .client import ApiError, connect

    try:
        with connect(args.url, args.username, args.password) as client:
            pusher = client.push_test_pattern(args.room_id)
    except (ApiError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pushing a test pattern to {pusher.push_url.split('?')[0]} (Ctrl-C stops)", flush=True)
    try:
        while pusher.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pusher.stop()
        print("stopped", flush=True)
        return 0
    print(f"error: ffmpeg ended with status {pusher.returncode}: {pusher.log_tail() or 'no message'}", file=sys.stderr)
    return 1


def _name_and_password(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME:PASS")
    return name, password


def _lite(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .lite import build_site, check_site, serve_hint

    site = Path(args.dir)
    if args.check:
        problems = check_site(site)
        for problem in problems:
            print(f"outside the site: {problem}")
        print(f"{site}: {'fetches from outside itself' if problems else 'self-contained: it fetches nothing from outside itself'}")
        return 1 if problems else 0
    built = build_site(site, cache=Path(args.cache) if args.cache else None, offline=args.offline)
    print(f"built {built.path}: Pyodide {built.pyodide}, {len(built.wheels)} wheels, {built.size / 2**20:.0f} MiB, fetches nothing from outside itself")
    print(f"serve it with any static file server, e.g.:\n  {serve_hint(built.path)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .conformance import DEFAULT_USER, all_checks, run_checks

    if not all_checks(args.only):
        print(f"error: no check id matches {args.only!r}", file=sys.stderr)
        return 2
    report = run_checks(
        args.url, args.username or DEFAULT_USER, args.password,
        second_user=args.second_user, keys=args.keys, only=args.only, timeout=args.timeout,
    )  # fmt: skip
    print(report.format_table())
    if args.json:
        Path(args.json).write_text(report.to_json() + "\n", encoding="utf-8")
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors are one line on stderr and a non-zero exit, never a traceback."""
    parser = build_parser()
    args, passed_on = parser.parse_known_args(argv)
    if passed_on and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
    args.passed_on = passed_on
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (LivekitDemoError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
