"""Push, pull and link URLs of rooms, exact to the character, with a fixed clock."""

from __future__ import annotations

import hashlib

import pytest

from livekit_demo.clock import FixedClock
from livekit_demo.models import Mode, RoomRecord
from livekit_demo.settings import LiveMicSettings, LiveStreamSettings, Settings
from livekit_demo.signing import explain_url, sign_url, srt_url
from livekit_demo.streams import LINK_TTL, EdgeAddress, StreamUrls, link_stream_name

EXP = 1700000000
WEEK = 604800


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def clock() -> FixedClock:
    # A week before the SPEC vectors' expiry, so the default auth_expires lands exactly on it.
    return FixedClock(EXP - WEEK)


def make(clock: FixedClock, **live_stream: object) -> StreamUrls:
    stream = LiveStreamSettings(**{"push_auth_key": "mykey", "pull_auth_key": "pullkey", **live_stream})  # type: ignore[arg-type]
    return StreamUrls(stream, LiveMicSettings(app_id="abc", app_key="abckey"), clock)


def link_room(**changes: object) -> RoomRecord:
    return RoomRecord(id="r1", mode=Mode.LINK, meeting_id="abcChannel", anchor="ann", anchor_id="ann").copy(**changes)


# --- push and pull -------------------------------------------------------------------------------


def test_push_info_matches_the_spec_vector(clock: FixedClock) -> None:
    info = make(clock).push_info("room1")
    auth = "1700000000-0-0-89eba59f3d82bb7653e0a04f236b4487"
    assert info == {
        "rtmp_url": f"rtmp://push.example.com/live/room1?auth_key={auth}",
        "rts_url": f"artc://push.example.com/live/room1?auth_key={auth}",
        "srt_url": f"srt://push.example.com:1105?streamid=#!::h=push.example.com,r=/live/room1?auth_key={auth},m=publish",
    }


def test_pull_info_signs_each_path_with_the_pull_key(clock: FixedClock) -> None:
    info = make(clock, pull_auth_key="mykey").pull_info("room1")
    assert list(info) == ["rtmp_url", "rts_url", "flv_url", "hls_url"]
    assert info["flv_url"] == "http://pull.example.com/live/room1.flv?auth_key=1700000000-0-0-003c3a9c5367afb06773c6a22ac16678"
    assert info["rtmp_url"] == "rtmp://pull.example.com/live/room1?auth_key=1700000000-0-0-89eba59f3d82bb7653e0a04f236b4487"
    assert info["rts_url"] == info["rtmp_url"].replace("rtmp://", "artc://")
    hls_hash = md5(f"/live/room1.m3u8-{EXP}-0-0-mykey")
    assert info["hls_url"] == f"http://pull.example.com/live/room1.m3u8?auth_key={EXP}-0-0-{hls_hash}"


def test_push_and_pull_use_their_own_domain_and_key(clock: FixedClock) -> None:
    urls = make(clock, push_url="in.cdn.test", pull_url="out.cdn.test", app_name="show")
    exp = EXP
    push = urls.push_info("r9")["rtmp_url"]
    pull = urls.pull_info("r9")["rtmp_url"]
    assert push == f"rtmp://in.cdn.test/show/r9?auth_key={exp}-0-0-{md5(f'/show/r9-{exp}-0-0-mykey')}"
    assert pull == f"rtmp://out.cdn.test/show/r9?auth_key={exp}-0-0-{md5(f'/show/r9-{exp}-0-0-pullkey')}"


def test_expiry_follows_the_clock_and_auth_expires(clock: FixedClock) -> None:
    urls = make(clock, auth_expires=60)
    clock.advance(100)
    exp = EXP - WEEK + 100 + 60
    assert urls.pull_info("room1")["rtmp_url"].endswith(f"?auth_key={exp}-0-0-{md5(f'/live/room1-{exp}-0-0-pullkey')}")


def test_unsigned_settings_give_bare_urls(clock: FixedClock) -> None:
    urls = make(clock, push_auth_key="", pull_auth_key="")
    assert urls.push_info("room1") == {
        "rtmp_url": "rtmp://push.example.com/live/room1",
        "rts_url": "artc://push.example.com/live/room1",
        "srt_url": "srt://push.example.com:1105?streamid=#!::h=push.example.com,r=/live/room1,m=publish",
    }
    assert urls.pull_info("room1") == {
        "rtmp_url": "rtmp://pull.example.com/live/room1",
        "rts_url": "artc://pull.example.com/live/room1",
        "flv_url": "http://pull.example.com/live/room1.flv",
        "hls_url": "http://pull.example.com/live/room1.m3u8",
    }


def test_only_one_side_unsigned(clock: FixedClock) -> None:
    urls = make(clock, push_auth_key="")
    assert "auth_key" not in urls.push_info("room1")["rtmp_url"]
    assert "auth_key=" in urls.pull_info("room1")["rtmp_url"]


def test_https_scheme_for_flv_and_hls_only(clock: FixedClock) -> None:
    info = make(clock, scheme="https", pull_auth_key="").pull_info("room1")
    assert info["flv_url"] == "https://pull.example.com/live/room1.flv"
    assert info["hls_url"] == "https://pull.example.com/live/room1.m3u8"
    assert info["rtmp_url"] == "rtmp://pull.example.com/live/room1"


def test_urls_explain_as_valid_until_they_expire(clock: FixedClock) -> None:
    urls = make(clock)
    push, pull = urls.push_info("room1"), urls.pull_info("room1")
    for url in push.values():
        assert explain_url(url, "mykey", now=clock.now()).verdict == "valid", url
    for url in pull.values():
        assert explain_url(url, "pullkey", now=clock.now()).verdict == "valid", url
    assert explain_url(push["srt_url"], "mykey", now=EXP + 1).verdict == "expired"


# --- co-streaming --------------------------------------------------------------------------------


def test_link_stream_name() -> None:
    assert link_stream_name("abc", "m1", "ann") == "abc_m1_ann_camera"


def test_link_info_for_the_anchor(clock: FixedClock) -> None:
    urls = make(clock, app_name="show")
    info = urls.link_info(link_room(), "ann")
    assert list(info) == ["cdn_pull_info", "rtc_push_url", "rtc_pull_url"]
    ts = EXP - WEEK + LINK_TTL
    # The mix lives under app "live" even when app_name is "show", and expires after a day.
    stream = "abc_abcChannel_ann_camera"
    cdn_hash = md5(f"/live/{stream}.flv-{ts}-0-0-pullkey")
    assert info["cdn_pull_info"]["flv_url"] == f"http://pull.example.com/live/{stream}.flv?auth_key={ts}-0-0-{cdn_hash}"
    assert set(info["cdn_pull_info"]) == {"rtmp_url", "rts_url", "flv_url", "hls_url"}
    token = sha256(f"abcabckeyabcChannelann{ts}")
    query = f"sdkAppId=abc&userId=ann&timestamp={ts}&token={token}"
    assert info["rtc_push_url"] == f"artc://live.aliyun.com/push/abcChannel?{query}"
    assert info["rtc_pull_url"] == f"artc://live.aliyun.com/play/abcChannel?{query}"


def test_link_info_matches_the_rtc_vector() -> None:
    clock = FixedClock(1699423634 - LINK_TTL)
    info = make(clock).link_info(link_room(), "abcUser")
    token = "3c9ee8d9f8734f0b7560ed8022a0590659113955819724fc9345ab8eedf84f31"
    assert info["rtc_push_url"] == (
        f"artc://live.aliyun.com/push/abcChannel?sdkAppId=abc&userId=abcUser&timestamp=1699423634&token={token}"
    )


def test_link_info_for_a_guest(clock: FixedClock) -> None:
    urls = make(clock)
    anchor, guest = urls.link_info(link_room(), "ann"), urls.link_info(link_room(), "bob")
    # Everyone watches the same mix; the RTC URLs are the asking user's own.
    assert guest["cdn_pull_info"] == anchor["cdn_pull_info"]
    assert "userId=bob&" in guest["rtc_push_url"] and "userId=bob&" in guest["rtc_pull_url"]
    assert guest["rtc_push_url"] != anchor["rtc_push_url"]
    found = explain_url(guest["rtc_pull_url"], "abckey", now=clock.now())
    assert (found.verdict, found.direction, found.user_id, found.stream) == ("valid", "play", "bob", "abcChannel")


def test_link_info_refuses_rooms_that_are_not_co_streaming(clock: FixedClock) -> None:
    with pytest.raises(ValueError, match="mode 1 rooms; room 'r1' has mode 0"):
        make(clock).link_info(link_room(mode=Mode.NORMAL), "ann")


def test_member_pull_url(clock: FixedClock) -> None:
    ts = EXP - WEEK + LINK_TTL
    url = make(clock).member_pull_url("abcChannel", "bob")
    assert url == (
        f"artc://live.aliyun.com/play/abcChannel?sdkAppId=abc&userId=bob&timestamp={ts}"
        f"&token={sha256(f'abcabckeyabcChannelbob{ts}')}"
    )
    # Regenerated on every read: it follows the clock.
    clock.advance(10)
    assert f"timestamp={ts + 10}&" in make(clock).member_pull_url("abcChannel", "bob")


# --- the rest ------------------------------------------------------------------------------------


def test_from_settings_and_repr(clock: FixedClock) -> None:
    urls = StreamUrls.from_settings(Settings.build(env={}, live_stream={"push_auth_key": "", "pull_auth_key": ""}), clock)
    assert urls.push_info("x")["rtmp_url"] == "rtmp://push.example.com/live/x"
    assert "unsigned" in repr(urls) and "key" not in repr(urls)
    assert "signed" in repr(make(clock)) and "mykey" not in repr(make(clock))


def test_explain_picks_the_key_for_the_host(clock: FixedClock) -> None:
    urls = make(clock)
    push, pull = urls.push_info("room1"), urls.pull_info("room1")
    assert urls.explain(push["srt_url"]).verdict == "valid"
    assert urls.explain(push["rtmp_url"]).verdict == "valid"
    assert urls.explain(pull["hls_url"]).verdict == "valid"
    assert urls.explain(urls.member_pull_url("abcChannel", "bob")).verdict == "valid"
    # A push URL moved to the pull domain is checked with the pull key, and fails.
    assert urls.explain(push["rtmp_url"].replace("push.", "pull.")).verdict == "bad signature"
    elsewhere = urls.explain(f"rtmp://elsewhere.test/live/room1?auth_key={EXP}-0-0-" + "0" * 32)
    assert (elsewhere.verdict, elsewhere.signature_valid) == ("unchecked", None)
    clock.advance(WEEK + 3600)
    assert urls.explain(push["rtmp_url"]).reason == "expired 1h ago (the hash matches)"


@pytest.mark.parametrize("room", ["room1", "直播", "a b", "r?1", "r#1", "r\t"])
@pytest.mark.parametrize(
    ("host", "edge"), [("", False), ("10.0.0.5", True), ("fe80::1", True), ("bad host", True), ("主机", True), ("h?x", True), ("h#x", True)]
)
@pytest.mark.parametrize("keys", [("mykey", "pullkey"), ("", "")])
def test_a_rooms_urls_are_its_unsigned_urls_each_signed_whole(
    clock: FixedClock, room: str, host: str, edge: bool, keys: tuple[str, str]
) -> None:
    # Plain parts (every room this server makes) are signed from the path alone, anything else the
    # long way: both must give what sign_url gives for each whole URL.
    urls, unsigned = make(clock, push_auth_key=keys[0], pull_auth_key=keys[1]), make(clock, push_auth_key="", pull_auth_key="")
    if edge:
        urls.edge = unsigned.edge = EdgeAddress(rtmp_port=19350, http_port=8080)
    push, pull = urls.push_info(room, host), urls.pull_info(room, host)
    bare_push, bare_pull = unsigned.push_info(room, host), unsigned.pull_info(room, host)
    assert pull == {name: sign_url(url, keys[1], EXP) for name, url in bare_pull.items()}
    assert push["rtmp_url"] == sign_url(bare_push["rtmp_url"], keys[0], EXP)
    assert push["rts_url"] == sign_url(bare_push["rts_url"], keys[0], EXP)
    assert push["srt_url"] == srt_url("push.example.com", f"/live/{room}", keys[0], EXP)


# -- the local edge (SPEC 13) ----------------------------------------------------------------------


def test_with_a_local_edge_urls_point_at_it_on_the_callers_host(clock: FixedClock) -> None:
    urls = make(clock)
    assert not urls.at_edge and urls.player_url("room1") is None
    urls.edge = EdgeAddress(rtmp_port=19350, http_port=8080)
    assert urls.at_edge
    q = "?auth_key=1700000000-0-0-"
    assert urls.push_info("room1", "192.168.1.5") == {
        "rtmp_url": f"rtmp://192.168.1.5:19350/live/room1{q}{md5('/live/room1-1700000000-0-0-mykey')}",
        "rts_url": f"artc://push.example.com/live/room1{q}{md5('/live/room1-1700000000-0-0-mykey')}",  # not served locally
        "srt_url": urls.push_info("room1")["srt_url"],
    }
    assert "push.example.com:1105" in urls.push_info("room1", "192.168.1.5")["srt_url"]
    assert urls.pull_info("room1", "192.168.1.5") == {
        "rtmp_url": f"rtmp://192.168.1.5:19350/live/room1{q}{md5('/live/room1-1700000000-0-0-pullkey')}",
        "rts_url": f"artc://pull.example.com/live/room1{q}{md5('/live/room1-1700000000-0-0-pullkey')}",
        "flv_url": f"http://192.168.1.5:8080/live/room1.flv{q}{md5('/live/room1.flv-1700000000-0-0-pullkey')}",
        "hls_url": f"http://192.168.1.5:8080/live/room1.m3u8{q}{md5('/live/room1.m3u8-1700000000-0-0-pullkey')}",
    }
    assert urls.player_url("room1", "192.168.1.5") == f"http://192.168.1.5:8080/live/room1.mp4{q}{md5('/live/room1.mp4-1700000000-0-0-pullkey')}"
    # no host known: the edge's default; an IPv6 host in brackets
    assert urls.push_info("room1")["rtmp_url"].startswith("rtmp://127.0.0.1:19350/live/room1?")
    assert urls.pull_info("room1", "fe80::1")["flv_url"].startswith("http://[fe80::1]:8080/live/room1.flv?")
    # the co-streaming mix is played from the edge too, under app live
    cdn = urls.link_info(link_room(), "ann", "10.0.0.2")["cdn_pull_info"]
    assert cdn["flv_url"].startswith("http://10.0.0.2:8080/live/abc_abcChannel_ann_camera.flv?")


def test_the_edge_serves_plain_http_whatever_the_cdn_scheme(clock: FixedClock) -> None:
    urls = make(clock, scheme="https")
    urls.edge = EdgeAddress(rtmp_port=1935, http_port=80)
    assert urls.pull_info("r", "h")["hls_url"].startswith("http://h:80/live/r.m3u8?")


def test_configured_domains_win_over_the_edge(clock: FixedClock) -> None:
    urls = make(clock, push_url="push.cdn.test", pull_url="pull.cdn.test")
    urls.edge = EdgeAddress(rtmp_port=19350, http_port=8080)
    assert not urls.at_edge
    assert urls.push_info("room1", "10.0.0.5")["rtmp_url"].startswith("rtmp://push.cdn.test/live/room1?")
    assert urls.pull_info("room1", "10.0.0.5")["flv_url"].startswith("http://pull.cdn.test/live/room1.flv?")
    # the browser player still reads what was pushed to the edge directly
    assert urls.player_url("room1", "10.0.0.5").startswith("http://10.0.0.5:8080/live/room1.mp4?")


def test_the_explainer_knows_which_key_an_edge_url_holds_with(clock: FixedClock) -> None:
    urls = make(clock)
    urls.edge = EdgeAddress(rtmp_port=19350, http_port=8080)
    push, pull = urls.push_info("r", "10.0.0.5")["rtmp_url"], urls.pull_info("r", "10.0.0.5")["rtmp_url"]
    assert urls.explain(push).verdict == "valid" and urls.explain(pull).verdict == "valid"
    assert urls.explain(push.replace("auth_key=1700000000-0-0-", "auth_key=1700000000-0-0-0")).verdict == "bad signature"
