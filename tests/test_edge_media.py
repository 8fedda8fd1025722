"""The media edge against a real ffmpeg: publish to a signed push URL, play over RTMP, HTTP-FLV, HLS and MP4.

Skipped with a reason when ffmpeg/ffprobe are missing, except under LIVEKIT_DEMO_REQUIRE_MEDIA=1 (CI).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from livekit_demo.edge import EdgeCallback
from livekit_demo.edge.pusher import TestPattern
from livekit_demo.signing import callback_signature

from edge_harness import PULL_KEY, PUSH_KEY, CallbackReceiver, EdgeHarness, probe_video_packets, require_media, wait_until

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture(scope="module")
def harness() -> Iterator[EdgeHarness]:
    """One edge with one test pattern published on `room1` for the module's tests."""
    require_media()
    edge = EdgeHarness()
    pusher = TestPattern(edge.push_url("room1"), title="room1").start()
    try:
        edge.wait_live("room1")
        yield edge
    finally:
        pusher.stop()
        edge.close()


@pytest.mark.parametrize("kind", ["flv", "rtmp", "m3u8", "mp4"])
def test_ffprobe_reads_video_from_each_pull_url(harness: EdgeHarness, kind: str) -> None:
    assert probe_video_packets(harness.pull_url(kind)) > 10


def test_a_new_viewer_starts_with_headers_and_a_keyframe(harness: EdgeHarness) -> None:
    from livekit_demo.edge._flv import FlvReader

    reader, tags = FlvReader(), []
    with httpx.stream("GET", harness.pull_url("flv"), timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/x-flv"
        for chunk in response.iter_bytes():
            tags += reader.feed(chunk)
            if len(tags) >= 4:
                break
    assert tags[0].type_id == 18  # onMetaData first
    assert {tags[1].is_video_header, tags[2].is_audio_header} == {True}
    assert tags[3].is_keyframe


@pytest.mark.parametrize(
    ("kind", "key", "exp_offset", "status"),
    [
        ("flv", None, 3600, 403),  # no auth_key
        ("flv", PUSH_KEY, 3600, 403),  # the push key does not play
        ("flv", "wrong", 3600, 403),  # a wrong key
        ("flv", PULL_KEY, -10, 403),  # expired
        ("m3u8", PUSH_KEY, 3600, 403),
        ("mp4", "wrong", 3600, 403),
    ],
)
def test_refused_http_pulls(harness: EdgeHarness, kind: str, key: str | None, exp_offset: int, status: int) -> None:
    url = harness.pull_url(kind, key=key or PULL_KEY, exp=harness.exp(exp_offset))
    if key is None:
        url = url.split("?")[0]
    response = httpx.get(url, timeout=10)
    assert response.status_code == status, response.text
    assert response.text.startswith("Forbidden")


def test_a_tampered_hash_is_refused(harness: EdgeHarness) -> None:
    url = harness.pull_url("flv")
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert httpx.get(tampered, timeout=10).status_code == 403


def test_an_offline_stream_is_404(harness: EdgeHarness) -> None:
    assert httpx.get(harness.pull_url("flv", stream="nobody"), timeout=10).status_code == 404
    assert httpx.get(harness.pull_url("m3u8", stream="nobody"), timeout=10).status_code == 404


@pytest.mark.parametrize("key", [PUSH_KEY, "wrong"])
def test_refused_rtmp_plays(harness: EdgeHarness, key: str) -> None:
    assert probe_video_packets(harness.pull_url("rtmp", key=key), timeout=20) == 0


def _no_viewers(harness: EdgeHarness) -> None:
    # Earlier tests' HLS viewers count for 10 s after their last fetch.
    wait_until(lambda: harness.edge.viewers("room1") == 0, 15, "earlier viewers to be gone")


def test_viewers_counts_open_flv_viewers(harness: EdgeHarness) -> None:
    _no_viewers(harness)
    with httpx.stream("GET", harness.pull_url("flv"), timeout=10) as response:
        chunks = response.iter_bytes()  # kept: a discarded iterator closes the response
        next(chunks)
        assert harness.edge.viewers("room1") == 1
    wait_until(lambda: harness.edge.viewers("room1") == 0, 10, "the viewer to be gone")


def test_an_hls_viewer_counts_once_however_often_it_reloads(harness: EdgeHarness) -> None:
    _no_viewers(harness)
    master = httpx.get(harness.pull_url("m3u8"), timeout=10)
    assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text
    variant = f"http://127.0.0.1:{harness.http_port}/live/{master.text.strip().splitlines()[-1]}"
    for _ in range(3):
        playlist = httpx.get(variant, timeout=30)
        assert playlist.status_code == 200, playlist.text
    assert harness.edge.viewers("room1") == 1
    segment = next(line for line in playlist.text.splitlines() if ".ts?" in line)
    answer = httpx.get(f"http://127.0.0.1:{harness.http_port}/live/{segment}", timeout=10)
    assert answer.status_code == 200 and answer.content[:1] == b"\x47"  # an MPEG-TS sync byte
    forged = segment.replace("auth_key=", "auth_key=1")
    assert httpx.get(f"http://127.0.0.1:{harness.http_port}/live/{forged}", timeout=10).status_code == 403


# -- refused pushes ------------------------------------------------------------------------------


def _refused_push(harness: EdgeHarness, url: str, stream: str = "room2") -> str:
    pusher = TestPattern(url).start()
    try:
        assert pusher.wait(20) != 0
    finally:
        pusher.stop()
    assert stream not in harness.edge.live_streams()
    return pusher.log_tail()


def test_push_without_auth_key_is_refused(harness: EdgeHarness) -> None:
    tail = _refused_push(harness, harness.push_url("room2").split("?")[0])
    assert "missing auth_key" in tail


def test_push_with_a_tampered_hash_is_refused(harness: EdgeHarness) -> None:
    url = harness.push_url("room2")
    assert "wrong hash" in _refused_push(harness, url[:-1] + ("0" if url[-1] != "0" else "1"))


def test_push_with_the_pull_key_is_refused(harness: EdgeHarness) -> None:
    assert "other direction" in _refused_push(harness, harness.push_url("room2", key=PULL_KEY))


def test_expired_push_is_refused(harness: EdgeHarness) -> None:
    url = harness.push_url("room2", exp=harness.exp(60))
    harness.clock.advance(120)  # type: ignore[attr-defined]
    try:
        assert "expired" in _refused_push(harness, url)
    finally:
        harness.clock.advance(-120)  # type: ignore[attr-defined]


def test_a_second_publisher_of_a_live_stream_is_refused(harness: EdgeHarness) -> None:
    assert "already being published" in _refused_push(harness, harness.push_url("room1"), stream="none")
    assert harness.edge.live_streams() == ["room1"]  # the first publisher is untouched


# -- limits and slow viewers ---------------------------------------------------------------------


def test_max_streams_and_max_viewers() -> None:
    require_media()
    edge = EdgeHarness(max_streams=1, max_viewers=1)
    pusher = TestPattern(edge.push_url("room1")).start()
    try:
        edge.wait_live("room1")
        assert "at most 1 streams" in _refused_push(edge, edge.push_url("room2"))
        with httpx.stream("GET", edge.pull_url("flv"), timeout=10) as first:
            chunks = first.iter_bytes()  # kept: a discarded iterator closes the response
            next(chunks)
            assert httpx.get(edge.pull_url("flv"), timeout=10).status_code == 503
            assert httpx.get(edge.pull_url("m3u8"), timeout=10).status_code == 503
        wait_until(lambda: edge.edge.viewers("room1") == 0, 10, "the viewer to leave")
        assert probe_video_packets(edge.pull_url("rtmp")) > 0  # room again
    finally:
        pusher.stop()
        edge.close()


def test_a_stalled_viewer_is_dropped_while_another_keeps_receiving() -> None:
    require_media()
    edge = EdgeHarness(viewer_queue_bytes=256 * 1024)
    pusher = TestPattern(edge.push_url("room1"), video_bitrate="2000k").start()
    stalled = socket.socket()
    try:
        edge.wait_live("room1")
        received = [0]
        stop = threading.Event()

        def watch() -> None:
            with httpx.stream("GET", edge.pull_url("flv"), timeout=30) as response:
                for chunk in response.iter_bytes():
                    received[0] += len(chunk)
                    if stop.is_set():
                        return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # A viewer that never reads: a tiny receive buffer so the server's writes back up fast.
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", edge.http_port))
        path = edge.pull_url("flv").split(str(edge.http_port), 1)[1]
        stalled.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        wait_until(lambda: edge.edge.viewers("room1") == 2, 10, "two viewers")
        wait_until(lambda: edge.edge.viewers("room1") == 1, 60, "the stalled viewer to be dropped")
        before = received[0]
        wait_until(lambda: received[0] > before + 50_000, 10, "the other viewer to keep receiving")
        assert pusher.running
        stop.set()
    finally:
        stalled.close()
        pusher.stop()
        edge.close()


# -- the callback and closing a stream -----------------------------------------------------------


def test_publish_and_publish_done_reach_the_callback_signed() -> None:
    require_media()
    receiver = CallbackReceiver()
    callback = EdgeCallback("http://appserver/api/v1/live/handlePushStreamEventCallback", host="push.example.com", auth_key="cbkey")
    callback._client_factory = lambda **kw: httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver), **kw)  # type: ignore[assignment]
    edge = EdgeHarness(callback=callback)
    callback.clock = edge.clock
    pusher = TestPattern(edge.push_url("room1")).start()
    try:
        edge.wait_live("room1")
        wait_until(lambda: len(receiver.requests) == 1, 10, "the publish event")
        edge.edge.close_stream("room1")  # from this thread, as the AppServer does when a room is deleted
        assert pusher.wait(15) != 0  # ffmpeg lost its connection
        wait_until(lambda: len(receiver.requests) == 2, 10, "the publish_done event")
    finally:
        pusher.stop()
        edge.close()
    (first_headers, publish), (_, done) = receiver.requests
    assert publish["action"] == "publish" and done["action"] == "publish_done"
    assert publish["id"] == "room1" and publish["appname"] == "live" and publish["app"] == "push.example.com"
    assert (publish["width"], publish["height"]) == (640, 360)  # from onMetaData
    assert publish["ip"] == "127.0.0.1" and isinstance(publish["time"], int)
    timestamp = first_headers["ali-live-timestamp"]
    assert first_headers["ali-live-signature"] == callback_signature("push.example.com", timestamp, "cbkey")
    assert edge.edge.live_streams() == []
