"""What a hostile tester broke (issue 15), each case kept fixed: one test per finding, on every engine it concerns.

Tests that need a real process (slow clients, a hung database, start-up errors) run `livekit-demo
serve` through tests/server_process.py, on loopback, bounded in count and time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_api import Api, api, assert_error  # noqa: F401  (api: the every-engine fixture)

API = "/api/v1/live"


# -- engine-independent answers (rows 4 and 13) ----------------------------------------------------


@pytest.mark.parametrize(
    ("call", "body", "field"),
    [
        ("create", {"title": "a\u0000b", "anchor": "ann"}, "title"),
        ("create", {"title": "t", "anchor": "ann", "extends": "{\u0000}"}, "extends"),
        ("update", {"id": "ROOM", "notice": "\u0000"}, "notice"),
        ("updateMeetingInfo", {"id": "ROOM", "user_id": "ann", "members": [{"user_id": "g1", "user_nick": "n\u0000"}]}, "members[0].user_nick"),
    ],
    ids=["create-title", "create-extends", "update-notice", "member-nick"],
)
def test_nul_in_text_is_a_400_naming_the_field_on_every_engine(api: Api, call: str, body: dict[str, object], field: str) -> None:
    room = api.create(mode=1)["id"]
    body = {k: (room if v == "ROOM" else v) for k, v in body.items()}
    before = api.stored()
    result = assert_error(api.call(call, body), 400, field, "NUL")
    assert [d["field"] for d in result["details"]] == [field]
    assert api.stored() == before


def test_a_huge_bad_value_is_not_echoed_back_whole(api: Api) -> None:
    huge = "x" * 100_000
    r = api.call("token", {"user_id": "ann", "device_id": "d", "device_type": huge})
    assert_error(r, 400, "device_type")
    assert len(r.content) < 2_000, len(r.content)
    assert "100000 characters" in r.json()["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    api = Api()
    body = f'{{"user_id": "ann", "page_num": 1, "page_size": 10, "status": {constant}}}'.encode()
    r = api.http.post(f"{API}/list", content=body, headers={"Authorization": f"Bearer {api.token('ann')}", "Content-Type": "application/json"})
    assert_error(r, 400, "not valid JSON", constant)
    r = api.http.post("/login", content=json.dumps({"username": "ann", "password": "ann"}).replace('"ann"}', constant + "}").encode())
    assert_error(r, 400, "JSON")
