"""Type A, RTC and IM hashes against the SPEC's vectors, and the URL explainer on good, bad and garbage URLs."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from livekit_demo.signing import (
    RTC_HOST,
    SRT_PORT,
    UrlExplanation,
    explain_url,
    im_app_token,
    rtc_token,
    rtc_url,
    sign_url,
    srt_url,
    type_a_auth_key,
    type_a_hash,
)

EXP = 1700000000
ROOM1_HASH = "89eba59f3d82bb7653e0a04f236b4487"
ROOM1_FLV_HASH = "003c3a9c5367afb06773c6a22ac16678"
ROOM1_RTMP = f"rtmp://push.example.com/live/room1?auth_key={EXP}-0-0-{ROOM1_HASH}"
RTC_TOKEN = "3c9ee8d9f8734f0b7560ed8022a0590659113955819724fc9345ab8eedf84f31"
BEFORE = EXP - 3600  # an hour before the vectors' expiry


# --- the hashes ----------------------------------------------------------------------------------


def test_type_a_vectors() -> None:
    assert type_a_hash("/live/room1", "mykey", EXP) == ROOM1_HASH
    assert type_a_hash("/live/room1.flv", "mykey", EXP) == ROOM1_FLV_HASH
    assert type_a_auth_key("/live/room1", "mykey", EXP) == f"{EXP}-0-0-{ROOM1_HASH}"
    assert type_a_auth_key("/live/room1.flv", "mykey", EXP) == f"{EXP}-0-0-{ROOM1_FLV_HASH}"


def test_type_a_rand_and_uid_take_part() -> None:
    hashed = hashlib.md5(f"/live/room1-{EXP}-r4nd-u1-mykey".encode()).hexdigest()
    assert type_a_auth_key("/live/room1", "mykey", EXP, rand="r4nd", uid="u1") == f"{EXP}-r4nd-u1-{hashed}"


def test_sign_url_vector_and_extension() -> None:
    assert sign_url("rtmp://push.example.com/live/room1", "mykey", EXP) == ROOM1_RTMP
    assert sign_url("http://pull.example.com/live/room1.flv", "mykey", EXP) == (
        f"http://pull.example.com/live/room1.flv?auth_key={EXP}-0-0-{ROOM1_FLV_HASH}"
    )


def test_sign_url_keeps_an_existing_query_out_of_the_hash() -> None:
    assert sign_url("rtmp://push.example.com/live/room1?x=1", "mykey", EXP) == (
        f"rtmp://push.example.com/live/room1?x=1&auth_key={EXP}-0-0-{ROOM1_HASH}"
    )


def test_sign_url_with_empty_key_is_unsigned() -> None:
    assert sign_url("rtmp://push.example.com/live/room1", "", EXP) == "rtmp://push.example.com/live/room1"


def test_sign_url_refuses_a_signed_url() -> None:
    with pytest.raises(ValueError, match="already signed"):
        sign_url(ROOM1_RTMP, "mykey", EXP)


def test_srt_url_form() -> None:
    assert srt_url("push.example.com", "/live/room1", "mykey", EXP) == (
        f"srt://push.example.com:{SRT_PORT}?streamid=#!::h=push.example.com,"
        f"r=/live/room1?auth_key={EXP}-0-0-{ROOM1_HASH},m=publish"
    )
    assert srt_url("push.example.com", "/live/room1", "", EXP) == (
        "srt://push.example.com:1105?streamid=#!::h=push.example.com,r=/live/room1,m=publish"
    )


def test_rtc_token_vector() -> None:
    assert rtc_token("abc", "abckey", "abcChannel", "abcUser", 1699423634) == RTC_TOKEN


def test_rtc_urls() -> None:
    query = f"sdkAppId=abc&userId=abcUser&timestamp=1699423634&token={RTC_TOKEN}"
    assert rtc_url("push", "abc", "abckey", "abcChannel", "abcUser", 1699423634) == (
        f"artc://{RTC_HOST}/push/abcChannel?{query}"
    )
    assert rtc_url("play", "abc", "abckey", "abcChannel", "abcUser", 1699423634) == (
        f"artc://live.aliyun.com/play/abcChannel?{query}"
    )
    with pytest.raises(ValueError, match="push' or 'play"):
        rtc_url("pull", "abc", "abckey", "abcChannel", "abcUser", 1699423634)


def test_im_app_token_is_sha256_of_the_concatenation() -> None:
    expected = hashlib.sha256(b"app1key1ann" + b"AK-" + b"0" * 32 + b"1700172800admin").hexdigest()
    assert im_app_token("app1", "key1", "ann", "AK-" + "0" * 32, 1700172800, "admin") == expected
    # The role takes part: an empty role is another token.
    assert im_app_token("app1", "key1", "ann", "AK-" + "0" * 32, 1700172800, "") != expected


# --- the explainer: CDN Type A -------------------------------------------------------------------


def test_explain_good_url() -> None:
    found = explain_url(ROOM1_RTMP, "mykey", now=BEFORE)
    assert found.verdict == "valid"
    assert found.kind == "cdn-type-a"
    assert found.signature_valid is True
    assert found.expired is False
    assert (found.scheme, found.host, found.uri, found.app, found.stream) == (
        "rtmp", "push.example.com", "/live/room1", "live", "room1",
    )  # fmt: skip
    assert found.expires_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert found.signature == found.expected_signature == ROOM1_HASH
    assert found.reason == "the hash matches and it expires in 1h"


def test_explain_expired_url() -> None:
    found = explain_url(ROOM1_RTMP, "mykey", now=EXP + 3 * 3600)
    assert found.verdict == "expired"
    assert found.expired is True
    assert found.signature_valid is True
    assert "expired 3h ago" in found.reason


def test_explain_expiry_edge_is_inclusive() -> None:
    assert explain_url(ROOM1_RTMP, "mykey", now=EXP).verdict == "valid"
    assert explain_url(ROOM1_RTMP, "mykey", now=EXP + 1).verdict == "expired"


def test_explain_now_as_datetime_naive_or_aware() -> None:
    aware = datetime.fromtimestamp(EXP, timezone.utc) + timedelta(days=2, hours=5)
    assert "expired 2d 5h ago" in explain_url(ROOM1_RTMP, "mykey", now=aware).reason
    assert "expired 2d 5h ago" in explain_url(ROOM1_RTMP, "mykey", now=aware.replace(tzinfo=None)).reason


@pytest.mark.parametrize(
    "url",
    [
        ROOM1_RTMP.replace("/room1", "/room2"),  # tampered path
        ROOM1_RTMP.replace(ROOM1_HASH, "0" * 32),  # tampered hash
        ROOM1_RTMP.replace(f"{EXP}-", f"{EXP + 1}-"),  # tampered expiry
    ],
    ids=["path", "hash", "expiry"],
)
def test_explain_tampered_url(url: str) -> None:
    found = explain_url(url, "mykey", now=BEFORE)
    assert found.verdict == "bad signature"
    assert found.signature_valid is False
    assert found.reason == "hash does not match: the URI, expiry or key differs"


def test_explain_wrong_key() -> None:
    found = explain_url(ROOM1_RTMP, "otherkey", now=BEFORE)
    assert found.verdict == "bad signature"
    assert found.expected_signature == type_a_hash("/live/room1", "otherkey", EXP)


def test_bad_signature_wins_over_expiry() -> None:
    found = explain_url(ROOM1_RTMP, "otherkey", now=EXP + 60)
    assert found.verdict == "bad signature"
    assert found.expired is True
    assert "expired 1m ago" in found.reason


def test_explain_without_key_is_unchecked() -> None:
    found = explain_url(ROOM1_RTMP, now=BEFORE)
    assert found.verdict == "unchecked"
    assert found.signature_valid is None
    assert found.expected_signature is None
    assert "no key given" in found.reason
    # Expiry needs no key.
    assert explain_url(ROOM1_RTMP, "", now=EXP + 10).verdict == "expired"


def test_explain_pull_urls_know_their_direction_and_stream() -> None:
    flv = f"https://pull.example.com/live/room1.flv?auth_key={EXP}-0-0-{ROOM1_FLV_HASH}"
    found = explain_url(flv, "mykey", now=BEFORE)
    assert found.verdict == "valid"
    assert (found.scheme, found.direction, found.stream, found.uri) == ("https", "pull", "room1", "/live/room1.flv")
    hls = sign_url("http://pull.example.com/live/room1.m3u8", "pk", EXP)
    assert explain_url(hls, "pk", now=BEFORE).stream == "room1"
    assert explain_url(hls, "pk", now=BEFORE).verdict == "valid"
    # The .flv hash does not sign the bare path.
    assert explain_url(flv.replace(".flv", ""), "mykey", now=BEFORE).verdict == "bad signature"


def test_explain_unsigned() -> None:
    found = explain_url("rtmp://push.example.com/live/room1", "mykey", now=BEFORE)
    assert found.kind == "unsigned"
    assert found.verdict == "unsigned"
    assert found.reason == "no auth_key parameter: the URL is unsigned"
    assert found.stream == "room1"


@pytest.mark.parametrize("auth_key", ["", "abc", f"{EXP}-0-{ROOM1_HASH}", f"x-0-0-{ROOM1_HASH}", f"{EXP}-0-0-xyz", f"{EXP}-0-0-0-{ROOM1_HASH}"])
def test_explain_malformed_auth_key(auth_key: str) -> None:
    found = explain_url(f"rtmp://push.example.com/live/room1?auth_key={auth_key}", "mykey", now=BEFORE)
    assert found.kind == "cdn-type-a"
    assert found.verdict == "bad signature"
    assert found.reason.startswith("malformed auth_key: expected exp-rand-uid-hash")


def test_explain_expiry_out_of_range() -> None:
    huge = 10**30
    found = explain_url(f"rtmp://h/live/r?auth_key={huge}-0-0-{type_a_hash('/live/r', 'k', huge)}", "k", now=BEFORE)
    assert found.verdict == "bad signature"
    assert found.reason.startswith("malformed expiry")


# --- the explainer: SRT and RTC ------------------------------------------------------------------


def test_explain_srt_round_trip() -> None:
    url = srt_url("push.example.com", "/live/room1", "mykey", EXP)
    found = explain_url(url, "mykey", now=BEFORE)
    assert found.kind == "srt"
    assert found.verdict == "valid"
    assert (found.host, found.port, found.uri, found.app, found.stream, found.direction) == (
        "push.example.com", 1105, "/live/room1", "live", "room1", "push",
    )  # fmt: skip
    assert explain_url(url, "otherkey", now=BEFORE).verdict == "bad signature"
    assert explain_url(url.replace("r=/live/room1", "r=/live/room9"), "mykey", now=BEFORE).verdict == "bad signature"
    assert explain_url(url, "mykey", now=EXP + 7200).reason == "expired 2h ago (the hash matches)"


def test_explain_srt_percent_encoded_and_unsigned() -> None:
    url = srt_url("push.example.com", "/live/room1", "mykey", EXP).replace("#!::", "%23%21%3A%3A")
    assert explain_url(url, "mykey", now=BEFORE).verdict == "valid"
    unsigned = explain_url(srt_url("push.example.com", "/live/room1", "", EXP).replace("publish", "request"))
    assert (unsigned.kind, unsigned.verdict, unsigned.direction) == ("unsigned", "unsigned", "pull")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("srt://push.example.com:1105", "SRT URL without a streamid parameter"),
        ("srt://push.example.com:1105?streamid=live/room1", "SRT streamid is not in the"),
        ("srt://push.example.com:1105?streamid=#!::h=x,m=publish", "SRT streamid has no r=/app/stream resource"),
    ],
)
def test_explain_srt_garbage(url: str, reason: str) -> None:
    found = explain_url(url, "mykey")
    assert found.kind == "unknown"
    assert found.reason.startswith(reason)


def test_explain_rtc_round_trip() -> None:
    ts = 1699423634
    for direction in ("push", "play"):
        url = rtc_url(direction, "abc", "abckey", "abcChannel", "abcUser", ts)
        found = explain_url(url, "abckey", now=ts - 86400)
        assert found.kind == "rtc"
        assert found.verdict == "valid"
        assert (found.direction, found.stream, found.user_id, found.app) == (direction, "abcChannel", "abcUser", "abc")
        assert found.signature == RTC_TOKEN
        assert found.reason == "the token matches and it expires in 1d"
    url = rtc_url("play", "abc", "abckey", "abcChannel", "abcUser", ts)
    assert explain_url(url, "wrong", now=ts - 1).verdict == "bad signature"
    assert explain_url(url.replace("userId=abcUser", "userId=eve"), "abckey", now=ts - 1).verdict == "bad signature"
    assert explain_url(url, "abckey", now=ts + 1).verdict == "expired"
    assert explain_url(url, now=ts - 1).verdict == "unchecked"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"artc://{RTC_HOST}/push/ch?sdkAppId=abc&userId=u&timestamp=1", "missing RTC parameter(s): token"),
        (f"artc://{RTC_HOST}/play/ch?sdkAppId=abc&userId=u&timestamp=soon&token={RTC_TOKEN}", "malformed RTC parameters"),
        (f"artc://{RTC_HOST}/play/ch?sdkAppId=abc&userId=u&timestamp=1&token=abc", "malformed RTC parameters"),
    ],
)
def test_explain_rtc_missing_or_malformed(url: str, reason: str) -> None:
    found = explain_url(url, "abckey")
    assert found.kind == "rtc"
    assert found.verdict == "bad signature"
    assert found.reason.startswith(reason)


# --- the explainer: garbage and display ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "hello",
        "://",
        "rtmp://",
        "http://[::1/live",
        "http://host:99999/live/x",
        "ftp://host/live/x?auth_key=1-0-0-x",
        f"artc://{RTC_HOST}/join/ch",
        "\x00\n\t",
        "rtmp:/one-slash/live/x",
    ],
)
def test_explain_garbage_never_raises(url: str) -> None:
    found = explain_url(url, "key", now=BEFORE)
    assert found.kind == "unknown"
    assert found.verdict == "unchecked"
    assert found.reason


def test_explain_non_string_and_bad_now() -> None:
    assert explain_url(None).kind == "unknown"  # type: ignore[arg-type]
    assert explain_url(ROOM1_RTMP, "mykey", now="tomorrow").reason.startswith("`now` is not a time")  # type: ignore[arg-type]


def test_explanation_is_frozen_and_displays() -> None:
    found = explain_url(ROOM1_RTMP, "mykey", now=BEFORE)
    assert isinstance(found, UrlExplanation)
    with pytest.raises(AttributeError):
        found.kind = "x"  # type: ignore[misc]
    table = explain_url(ROOM1_RTMP + "&<b>", "mykey", now=BEFORE)._repr_html_()
    assert "<th style='text-align:left'>verdict</th>" in table
    assert "2023-11-14T22:13:20+00:00" in table
    assert "&amp;&lt;b&gt;" in table and "&<b>" not in table
