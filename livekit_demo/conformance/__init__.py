"""The conformance kit: named checks of the HTTP contract against any AppServer, ours or another.

Every check comes from SPEC.md and the swagger contract, never from our implementation, and talks
to the server over HTTP only (httpx). A run logs in, creates the rooms it needs and deletes them all
at the end, even when checks fail. Checks of rules where we are deliberately stricter than the
original Go server are labelled, so a report on the original reads fairly.

    >>> from livekit_demo.conformance import run_checks
    >>> report = run_checks("http://127.0.0.1:8080", "ann", "ann")  # doctest: +SKIP
    >>> report.ok, report.counts                                     # doctest: +SKIP
    (True, {'pass': 131, 'fail': 0, 'skip': 7, 'stricter_fail': 0})
    >>> print(report.format_table())                                 # doctest: +SKIP

Signatures are verified only when the server's keys are given (`keys=` a `Settings`, a mapping with
the original's config keys such as ``{"live_stream": {"push_auth_key": ...}}``, or a config file path);
without them those checks are skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import html
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..client import transport_for_url
from ..exceptions import LivekitDemoError
from ..settings import Settings, load_config_file
from . import _callbacks, _checks, _clients, _rooms  # noqa: F401  (they register the checks)
from ._base import (
    REGISTRY,
    Check,
    CheckFailed,
    CheckSkipped,
    Exchange,
    Keys,
    Probe,
    brief,
)

__all__ = [
    "Check",
    "CheckResult",
    "Exchange",
    "Keys",
    "Report",
    "ServerUnreachable",
    "all_checks",
    "load_keys",
    "run_checks",
    "with_scheme",
    "DEFAULT_USER",
]

PASS, FAIL, SKIP = "pass", "fail", "skip"
DEFAULT_PEER = "conformance_peer"
DEFAULT_USER = "conformance"
"""The user a run logs in as when none is given: the demo login rule (password = username) admits it."""
_COLORS = {PASS: "#1a7f37", FAIL: "#cf222e", SKIP: "#9a6700"}


class ServerUnreachable(LivekitDemoError):
    """No HTTP answer at all from the base URL (refused, unknown host, timeout)."""


@dataclass
class CheckResult:
    """What one check did and found: its requests, what it expected, what it saw, and the outcome."""

    id: str
    description: str
    outcome: str  # "pass", "fail" or "skip"
    reason: str = ""
    expected: str = ""
    seen: str = ""
    requests: list[Exchange] = field(default_factory=list)
    stricter: str = ""  # non-empty: our stricter rule, and what the original did
    seconds: float = 0.0

    @property
    def label(self) -> str:
        """The outcome as shown: `FAIL (our stricter rule)` for a stricter rule's failure."""
        if self.outcome == FAIL and self.stricter:
            return "FAIL (our stricter rule)"
        return self.outcome.upper()

    def to_dict(self) -> dict[str, Any]:
        # Exchanges are dataclasses too: asdict turns the whole record into plain JSON data.
        return {**dataclasses.asdict(self), "stricter": self.stricter or None, "seconds": round(self.seconds, 4)}


@dataclass
class Report:
    """The results of one run against `base_url`."""

    base_url: str
    results: list[CheckResult]
    cleanup_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        """How many passed, failed and were skipped; `stricter_fail` counts failures of our stricter rules."""
        counts = {PASS: 0, FAIL: 0, SKIP: 0}
        for result in self.results:
            counts[result.outcome] += 1
        counts["stricter_fail"] = sum(1 for r in self.results if r.outcome == FAIL and r.stricter)
        return counts

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome == FAIL]

    def __getitem__(self, check_id: str) -> CheckResult:
        for result in self.results:
            if result.id == check_id:
                return result
        raise KeyError(check_id)

    def summary(self) -> str:
        """One line: the counts, and how many failures are our stricter rules."""
        c = self.counts
        stricter = f" ({c['stricter_fail']} of them our stricter rules)" if c["stricter_fail"] else ""
        cleanup = f"; cleanup: {len(self.cleanup_problems)} room(s) left behind" if self.cleanup_problems else ""
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"{verdict}: {len(self.results)} checks against {self.base_url}: {c[PASS]} passed, {c[FAIL]} failed{stricter}, "
            f"{c[SKIP]} skipped in {self.seconds:.1f} s{cleanup}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "ok": self.ok,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
            "cleanup_problems": self.cleanup_problems,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The whole report as JSON (tokens and passwords redacted)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def format_table(self, *, width: int | None = None) -> str:
        """A plain-text table: outcome, id, and for failures and skips the reason (whole, unless `width` cuts it); then the summary."""
        id_width = max((len(r.id) for r in self.results), default=10)
        lines = [f"{'outcome':<25} {'check':<{id_width}}  detail"]
        for r in self.results:
            detail = "" if r.outcome == PASS else _detail(r)
            if detail and width is not None:
                detail = brief(detail, max(20, width - 27 - id_width))
            lines.append(f"{r.label:<25} {r.id:<{id_width}}  {detail}".rstrip())
        lines += [f"cleanup: {p}" for p in self.cleanup_problems]
        lines.append(self.summary())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = []
        for r in self.results:
            color = _COLORS[r.outcome]
            detail = html.escape(_detail(r)) if r.outcome != PASS else ""
            requests = "<br>".join(html.escape(x.line()) for x in r.requests[-3:])
            rows.append(
                f"<tr><td style='color:{color};font-weight:bold;white-space:nowrap'>{html.escape(r.label)}</td>"
                f"<td style='text-align:left'><code>{html.escape(r.id)}</code><br><small>{html.escape(r.description)}</small></td>"
                f"<td style='text-align:left'>{detail}<br><small><code>{requests}</code></small></td></tr>"
            )
        color = _COLORS[PASS] if self.ok else _COLORS[FAIL]
        return (
            f"<div><p style='color:{color};font-weight:bold'>{html.escape(self.summary())}</p>"
            "<table><tr><th>outcome</th><th style='text-align:left'>check</th><th style='text-align:left'>detail</th></tr>"
            f"{''.join(rows)}</table></div>"
        )

    def __repr__(self) -> str:
        return f"<Report {self.summary()}>"


def _detail(result: CheckResult) -> str:
    if result.outcome == SKIP:
        return result.reason
    text = f"expected {result.expected}; saw {result.seen}"
    if result.stricter:
        text += f" [our stricter rule: {result.stricter}]"
    return text


def all_checks(only: str | Iterable[str] | None = None) -> list[Check]:
    """The registered checks in run order, filtered by glob(s) on their ids (``"lifecycle.*"``)."""
    patterns = [only] if isinstance(only, str) else list(only or [])
    patterns = [p.strip() for pattern in patterns for p in pattern.split(",") if p.strip()]
    return [c for c in REGISTRY.values() if not patterns or any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]


def load_keys(keys: Settings | Mapping[str, Any] | str | os.PathLike[str] | None) -> Keys | None:
    """What the checker knows of the server's keys, from settings, a config mapping or a config file.

    From a mapping (or file) only the keys it names are known: a section left out stays unknown,
    and the checks that need it are skipped rather than judged against our own defaults.
    """
    if keys is None:
        return None
    if isinstance(keys, Settings):
        s = keys
        return Keys(
            push_auth_key=s.live_stream.push_auth_key, pull_auth_key=s.live_stream.pull_auth_key,
            app_name=s.live_stream.app_name, auth_expires=s.live_stream.auth_expires,
            rtc_app_id=s.live_mic.app_id, rtc_app_key=s.live_mic.app_key,
            im_app_id=s.live_im.app_id, im_app_key=s.live_im.app_key, max_body=s.server.max_body,
            callback_host=s.live_stream.callback_signing_host, callback_auth_key=s.live_stream.callback_signing_key,
        )  # fmt: skip
    data = load_config_file(keys) if isinstance(keys, (str, os.PathLike)) else dict(keys)
    settings = Settings.build(env={}, **data)  # one clear error naming any bad key

    def given(section: str, key: str) -> Any:
        values = data.get(section)
        return getattr(getattr(settings, section), key) if isinstance(values, Mapping) and key in values else None

    return Keys(
        push_auth_key=given("live_stream", "push_auth_key"), pull_auth_key=given("live_stream", "pull_auth_key"),
        app_name=settings.live_stream.app_name, auth_expires=settings.live_stream.auth_expires,
        rtc_app_id=given("live_mic", "app_id"), rtc_app_key=given("live_mic", "app_key"),
        im_app_id=given("live_im", "app_id"), im_app_key=given("live_im", "app_key"), max_body=settings.server.max_body,
        # The callback signs with callback_host / callback_auth_key, defaulting to push_url / push_auth_key.
        callback_host=given("live_stream", "callback_host") or given("live_stream", "push_url"),
        callback_auth_key=given("live_stream", "callback_auth_key") or given("live_stream", "push_auth_key"),
    )  # fmt: skip


def _peer(second_user: str | tuple[str, str] | None, username: str) -> tuple[str, str]:
    if second_user is None:
        # The demo login rule (password = username) admits any unconfigured name.
        name = DEFAULT_PEER if username != DEFAULT_PEER else DEFAULT_PEER + "2"
        return name, name
    if isinstance(second_user, str):
        name, sep, password = second_user.partition(":")
        if not sep or not name:
            raise ValueError(f"second user must be NAME:PASSWORD, not {second_user!r}")
        return name, password
    return second_user


def with_scheme(base_url: str) -> str:
    """`base_url` with ``http://`` in front when it has no scheme (``127.0.0.1:8080``), and no trailing slash."""
    url = base_url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def run_checks(
    base_url: str,
    username: str = DEFAULT_USER,
    password: str | None = None,
    *,
    second_user: str | tuple[str, str] | None = None,
    keys: Settings | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    only: str | Iterable[str] | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> Report:
    """Run the checks against the AppServer at `base_url`, logged in as `username`.

    `base_url` may leave out ``http://``. `password` defaults to `username` (the demo login rule,
    so a demo server needs neither). `second_user` ("NAME:PASSWORD" or a pair) acts in identity and
    ownership checks; by default a demo-rule login as ``conformance_peer``. `only` selects checks by
    glob on their ids. When the user cannot log in, the run stops there: one failing ``login`` row,
    after one attempt (so no lockout). Every room the run creates is deleted before returning.
    Raises `ServerUnreachable` when nothing answers.
    """
    base_url = with_scheme(base_url)
    password = username if password is None else password
    selected = all_checks(only)
    peer = _peer(second_user, username)
    known = load_keys(keys)
    started = time.perf_counter()
    if transport is None:
        transport = transport_for_url(base_url)  # an in-process server: its own transport
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport, follow_redirects=False) as client:
        try:
            client.get("/")
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"no answer from {base_url}: {type(exc).__name__}: {exc}") from None
        probe = Probe(client, username, password, peer, known)
        try:
            probe.token("main")
        except CheckSkipped as exc:
            # Every check needs this login: one clear row instead of a table of consequences, and
            # no more wrong-password attempts than one (a server locks a user out after a few).
            login = CheckResult(
                "login", "the given user logs in", FAIL, reason="cannot log in; the other checks were not run",
                expected="/login answers HTTP 200 with a token", seen=str(exc), requests=list(probe.exchanges),
            )  # fmt: skip
            return Report(base_url, [login], [], time.perf_counter() - started)
        try:
            results = [_run_one(probe, item) for item in selected]
        finally:
            probe.cleanup()
    return Report(base_url, results, probe.cleanup_problems, time.perf_counter() - started)


def _run_one(probe: Probe, item: Check) -> CheckResult:
    probe.begin()
    result = CheckResult(item.id, item.description, PASS, stricter=item.stricter)
    started = time.perf_counter()
    try:
        item.run(probe)
        result.expected = "; ".join(probe.expectations)
        result.seen = "as expected"
    except CheckFailed as exc:
        result.outcome, result.expected, result.seen = FAIL, exc.expected, exc.seen
        result.reason = f"our stricter rule: {item.stricter}" if item.stricter else "the server answered outside the contract"
    except CheckSkipped as exc:
        result.outcome, result.reason = SKIP, str(exc)
    except Exception as exc:
        result.outcome, result.reason = FAIL, "the answer could not be read as the contract describes"
        last = probe.exchanges[-1].line() if probe.exchanges else "no request"
        result.expected, result.seen = "an answer in the contract's shape", f"{type(exc).__name__}: {exc} (after {last})"
    result.requests = list(probe.exchanges)
    result.seconds = time.perf_counter() - started
    return result
