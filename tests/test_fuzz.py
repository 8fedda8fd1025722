"""Fuzzing a real `serve` process through the OpenAPI document it serves, then hostile bodies a generator does not make.

Schemathesis reads `/openapi.json` from the running server and, per operation, sends bodies that fit
the schema (positive) and bodies that break it (negative). Every answer must be a documented status,
match its documented schema, and never be a 5xx. The token is an admin's, so that bodies naming any
user get past the identity checks and reach the rooms layer and storage.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from livekit_demo.passwords import hash_password

from server_process import ServerProcess, login_headers, serve_process

ADMIN_PASSWORD = "fuzz-admin-password"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
    checks.content_type_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    config = {"auth": {"users": {"boss": hash_password(ADMIN_PASSWORD)}, "admins": ["boss"]}}
    # TinyDB storage, so generated strings also go through the journal and the snapshot.
    with serve_process(tmp, "--storage", str(tmp / "rooms.json"), config=config) as process:
        yield process


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> dict[str, str]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        return login_headers(http, "boss", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def served_schema(server: ServerProcess) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(server.url + "/openapi.json")
    loaded.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
        database="none",  # no example database written into the repository
    )
    return loaded


schema = schemathesis.pytest.from_fixture("served_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_served_operation_answers_as_documented(case: schemathesis.Case, admin: dict[str, str]) -> None:
    response = case.call_and_validate(headers=admin, checks=CHECKS, timeout=30)
    needs_token = bool(case.operation.definition.raw.get("security"))  # not login, verifyAuthToken, the CDN callback
    if needs_token:
        # The admin's token went along: an authenticated call failing its token would mean we fuzzed only the 401 path.
        assert response.status_code != 401, response.text


# -- hostile bodies: what a schema-driven generator never sends ----------------------------------

HOSTILE = [
    # (why, path, raw body, field named in details)
    ("deep nesting exhausts the JSON decoder's stack", "/api/v1/live/create", b"[" * 100_000, "body"),
    ("deep nesting under an ignored key", "/api/v1/live/create", b'{"title":"t","anchor":"boss","x":' + b"[" * 5000 + b"]" * 5000 + b"}", "body"),
    ("a lone surrogate in a stored field", "/api/v1/live/create", b'{"title":"\\ud800","anchor":"boss"}', "title"),
    ("a lone low surrogate in extends", "/api/v1/live/create", b'{"title":"t","anchor":"boss","extends":"{\\"a\\":\\"\\udfff\\"}"}', "extends"),
    ("a lone surrogate in a member", "/api/v1/live/updateMeetingInfo", b'{"id":"x","members":[{"user_id":"a","user_nick":"\\uDC00x"}]}', "members[0].user_nick"),
    ("a lone surrogate in a password", "/login", b'{"username":"ann","password":"\\ud83d"}', "password"),
    ("an integer of 5000 digits", "/api/v1/live/create", b'{"title":"t","anchor":"boss","mode":' + b"9" * 5000 + b"}", "body"),
    ("NaN for an integer", "/api/v1/live/list", b'{"user_id":"boss","page_num":NaN,"page_size":10}', "body"),  # NaN is not JSON (RFC 8259)
    ("Infinity for an integer", "/api/v1/live/list", b'{"user_id":"boss","page_num":1,"page_size":1e400}', "page_size"),
]


@pytest.mark.parametrize(("why", "path", "raw", "field"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_are_400_and_poison_nothing(server: ServerProcess, admin: dict[str, str], why: str, path: str, raw: bytes, field: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post(path, content=raw, headers=admin | {"Content-Type": "application/json"})
        assert r.status_code == 400, (why, r.status_code, r.text)
        body = r.json()
        assert body["code"] == 400 and field in {d["field"] for d in body["details"]}, body
        # A surrogate stored by mistake would make every later list that shows the room a 500.
        listed = http.post("/api/v1/live/list", json={"user_id": "boss", "page_num": 1, "page_size": 100}, headers=admin)
        assert listed.status_code == 200, listed.text


def test_a_surrogate_pair_is_text_and_kept(server: ServerProcess, admin: dict[str, str]) -> None:
    # The fix refuses lone surrogates only: a proper pair is an emoji, and people put emoji in titles.
    with httpx.Client(base_url=server.url, timeout=10) as http:
        raw = b'{"title":"\\ud83d\\ude00 live","anchor":"boss"}'
        r = http.post("/api/v1/live/create", content=raw, headers=admin | {"Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["title"] == "\U0001f600 live", r.text


def test_the_served_document_is_openapi_3_1(server: ServerProcess, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert len(doc["paths"]) >= 2 * 21 + 3  # v1 and v2 names, /login, GET refresh, /
