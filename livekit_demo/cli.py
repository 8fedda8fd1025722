"""The command line: `livekit-demo serve | hash-password | lab | check` (also `python -m livekit_demo`)."""

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
    serve.set_defaults(run=_serve)

    lab = commands.add_parser("lab", help="open JupyterLab on the teaching notebooks")
    lab.add_argument("--dir", default=None, help="where to put your copies of the notebooks (default ./livekit_demo_notebooks)")
    # Any other arguments (e.g. --no-browser --port 8888) are passed on to JupyterLab.
    lab.set_defaults(run=_lab)

    hasher = commands.add_parser("hash-password", help="make a password hash for auth.users")
    hasher.add_argument("--stdin", action="store_true", help="read the password from standard input (for scripts)")
    hasher.set_defaults(run=_hash_password)

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
    serve(Settings.build(args.config, **overrides))
    return 0


def _lab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .lab import DEFAULT_FOLDER, run_lab

    return run_lab(Path(args.dir or DEFAULT_FOLDER), args.passed_on)


def _hash_password(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 2
    if not password:
        print("error: empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def _name_and_password(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME:PASS")
    return name, password


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
