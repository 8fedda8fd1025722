"""The media edge's pieces without ffmpeg: AMF0, RTMP chunking, the Type A check, FLV tags, the hub, the callback client."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import httpx
import pytest

from livekit_demo.clock import FixedClock
from livekit_demo.edge import EdgeCallback, MediaEdge, _amf0, _rtmp
from livekit_demo.edge._auth import check_type_a, split_query
from livekit_demo.edge._flv import AUDIO, VIDEO, FlvReader, Tag, flv_header, metadata_tag
from livekit_demo.edge._hub import Hub, Refused
from livekit_demo.edge.pusher import MediaToolMissing, find_ffmpeg
from livekit_demo.signing import callback_signature, type_a_auth_key

from edge_harness import CallbackReceiver

# -- AMF0 ----------------------------------------------------------------------------------------


def test_amf0_round_trips_what_rtmp_peers_send() -> None:
    values = ["connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live", "fpad": False}, None, [1.0, "a"], "é" * 3]
    assert _amf0.decode(_amf0.encode(*values)) == values


def test_amf0_known_bytes() -> None:
    assert _amf0.encode("ab") == b"\x02\x00\x02ab"
    assert _amf0.encode(1) == b"\x00" + struct.pack(">d", 1.0)
    assert _amf0.encode(True, None) == b"\x01\x01\x05"
    assert _amf0.encode({"a": 1}) == b"\x03\x00\x01a\x00" + struct.pack(">d", 1.0) + b"\x00\x00\x09"
    ecma = _amf0.encode(_amf0.ECMAArray(width=640.0))
    assert ecma[:5] == b"\x08\x00\x00\x00\x01"
    decoded = _amf0.decode(ecma)[0]
    assert isinstance(decoded, _amf0.ECMAArray) and decoded == {"width": 640.0}


def test_amf0_long_strings_and_undefined() -> None:
    long = "x" * 70000
    assert _amf0.encode(long)[:1] == b"\x0c"
    assert _amf0.decode(_amf0.encode(long)) == [long]
    assert _amf0.decode(b"\x06") == [None]


@pytest.mark.parametrize("data", [b"\x02\x00\x05ab", b"\x00\x01", b"\x03\x00\x01a", b"\x42"])
def test_amf0_refuses_truncated_or_unknown_bytes(data: bytes) -> None:
    with pytest.raises(_amf0.AMF0Error):
        _amf0.decode(data)


def test_amf0_refuses_what_it_cannot_carry() -> None:
    with pytest.raises(_amf0.AMF0Error):
        _amf0.encode(object())


# -- RTMP chunking -------------------------------------------------------------------------------


def _read_all(data: bytes, chunk_size: int = 128) -> list[_rtmp.Message]:
    async def run() -> list[_rtmp.Message]:
        stream = asyncio.StreamReader()
        stream.feed_data(data)
        stream.feed_eof()
        reader = _rtmp.ChunkReader(stream)
        reader.chunk_size = chunk_size
        messages = []
        try:
            while True:
                messages.append(await reader.read_message())
        except asyncio.IncompleteReadError:
            return messages

    return asyncio.run(run())


@pytest.mark.parametrize("chunk_size", [128, 4096])
@pytest.mark.parametrize("csid", [3, 70, 400])
def test_chunks_round_trip(chunk_size: int, csid: int) -> None:
    payload = bytes(range(256)) * 40  # 10240 bytes: many chunks at 128
    data = _rtmp.encode_message(csid, VIDEO, 1, 1234, payload, chunk_size)
    [message] = _read_all(data, chunk_size)
    assert (message.type_id, message.timestamp, message.stream_id, message.payload, message.csid) == (VIDEO, 1234, 1, payload, csid)


def test_extended_timestamps_are_carried_on_every_chunk() -> None:
    payload = b"v" * 300
    data = _rtmp.encode_message(6, VIDEO, 0, 0x01000000, payload, 128)
    assert data.count(struct.pack(">I", 0x01000000)) == 3  # the type-0 header and both continuations
    [message] = _read_all(data)
    assert message.timestamp == 0x01000000 and message.payload == payload


def test_interleaved_chunk_streams_and_delta_headers() -> None:
    # Hand-built: audio (csid 4) type 0 at t=100, video (csid 6) split in two chunks with
    # an audio chunk between them, then audio type 2 (delta 23) and type 3 (same delta again).
    audio = b"a" * 10
    video = b"v" * 200
    out = b"\x04" + (100).to_bytes(3, "big") + (10).to_bytes(3, "big") + b"\x08" + b"\x01\x00\x00\x00" + audio
    out += b"\x06" + (90).to_bytes(3, "big") + (200).to_bytes(3, "big") + b"\x09" + b"\x01\x00\x00\x00" + video[:128]
    out += b"\x84" + (23).to_bytes(3, "big") + audio  # type 2: delta 23, same length and type
    out += b"\xc6" + video[128:]  # type 3: the rest of the video message
    out += b"\xc4" + audio  # type 3 starting a new message: the last delta again
    messages = _read_all(out)
    assert [(m.csid, m.type_id, m.timestamp, len(m.payload)) for m in messages] == [
        (4, AUDIO, 100, 10), (4, AUDIO, 123, 10), (6, VIDEO, 90, 200), (4, AUDIO, 146, 10),
    ]  # fmt: skip


def test_a_chunk_stream_may_not_start_without_a_full_header() -> None:
    with pytest.raises(_rtmp.RtmpError):
        _read_all(b"\x44" + b"\x00" * 7)


def test_oversized_messages_are_refused() -> None:
    with pytest.raises(_rtmp.RtmpError):
        _read_all(b"\x04" + b"\x00\x00\x00" + (_rtmp.MAX_MESSAGE_SIZE + 1).to_bytes(3, "big") + b"\x09" + b"\x00" * 4)


def test_command_messages_decode() -> None:
    data = _rtmp.command("_result", 1, None, 1)
    [message] = _read_all(data)
    assert message.type_id == _rtmp.COMMAND_AMF0 and message.amf() == ["_result", 1.0, None, 1.0]


# -- the Type A check ----------------------------------------------------------------------------


NOW = 1_700_000_000


def test_type_a_check() -> None:
    good = type_a_auth_key("/live/room1", "push", NOW + 60)
    assert check_type_a("/live/room1", good, "push", NOW) is None
    assert check_type_a("/live/room1", good, "push", NOW + 60) is None  # valid through exp itself
    assert check_type_a("/live/room1", good, "push", NOW + 61) == "expired 1 s ago"
    assert check_type_a("/live/room1", None, "push", NOW) == "missing auth_key"
    assert check_type_a("/live/room2", good, "push", NOW).startswith("wrong hash")  # type: ignore[union-attr]
    assert check_type_a("/live/room1", "garbage", "push", NOW).startswith("malformed")  # type: ignore[union-attr]
    assert "other direction" in check_type_a("/live/room1", good, "pull", NOW, other_key="push")  # type: ignore[operator]
    assert check_type_a("/live/room1", None, "", NOW) is None  # an empty key: unsigned URLs


def test_split_query() -> None:
    assert split_query("room1?auth_key=1-0-0-ab&x=") == ("room1", {"auth_key": "1-0-0-ab", "x": ""})
    assert split_query("room1") == ("room1", {})


# -- FLV tags and the hub -------------------------------------------------------------------------


def _video(keyframe: bool, header: bool = False, ts: int = 0) -> Tag:
    return Tag(VIDEO, ts, bytes(((0x10 if keyframe else 0x20) | 7, 0 if header else 1)) + b"\x00" * 100)


def test_flv_tags_round_trip() -> None:
    tags = [Tag(AUDIO, 5, b"\xaf\x00\x12\x10"), _video(True, ts=0x01020304)]
    reader = FlvReader()
    data = flv_header() + b"".join(t.flv() for t in tags)
    parsed = [tag for i in range(len(data)) for tag in reader.feed(data[i : i + 1])]  # byte by byte
    assert [(t.type_id, t.timestamp, t.payload) for t in parsed] == [(t.type_id, t.timestamp, t.payload) for t in tags]
    assert tags[0].is_audio_header and tags[1].is_keyframe and not tags[1].is_video_header


def test_metadata_tag_unwraps_set_data_frame() -> None:
    tag = metadata_tag(["@setDataFrame", "onMetaData", {"width": 640.0}])
    assert tag is not None and _amf0.decode(tag.payload) == ["onMetaData", {"width": 640.0}]
    assert metadata_tag(["onCuePoint", {}]) is None


def test_gop_cache_and_slow_viewers() -> None:
    async def run() -> None:
        hub = Hub(max_streams=1, max_viewers=2, viewer_queue_bytes=1000)
        stream = hub.open("room1", lambda: None)
        with pytest.raises(Refused) as second:
            hub.open("room1", lambda: None)
        assert second.value.code == "NetStream.Publish.BadName"
        with pytest.raises(Refused):
            hub.open("room2", lambda: None)  # max_streams
        stream.publish(_video(True, header=True))
        stream.publish(_video(True, ts=0))
        stream.publish(_video(False, ts=40))
        stream.publish(_video(True, ts=2000))
        stream.publish(_video(False, ts=2040))
        late = hub.subscribe("room1", "flv")
        first = await late.batch()
        assert first[0].is_video_header and first[0].timestamp == 2000  # restamped to the GOP start
        assert [t.timestamp for t in first[1:]] == [2000, 2040]
        slow = hub.subscribe("room1", "flv")
        with pytest.raises(Refused) as full:
            hub.subscribe("room1", "flv")
        assert full.value.status == 503
        assert hub.viewers("room1") == 2
        for ts in range(2080, 2080 + 40 * 20, 40):
            stream.publish(_video(False, ts=ts))
            await late.batch()  # keeps up; `slow` never reads
        assert slow.dropped and slow.closed and not late.closed
        assert hub.viewers("room1") == 1
        with pytest.raises(Refused) as offline:
            hub.subscribe("nobody", "flv")
        assert offline.value.status == 404
        hub.close(stream)
        assert late.closed and await late.batch() == [] and hub.viewers("room1") == 0

    asyncio.run(run())


def test_hls_sessions_count_for_ten_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo.edge import _hub

    hub = Hub(max_streams=1, max_viewers=5, viewer_queue_bytes=1000)
    now = [100.0]
    monkeypatch.setattr(_hub.time, "monotonic", lambda: now[0])
    hub.touch_hls("room1", "a")
    hub.touch_hls("room1", "a")
    hub.touch_hls("room1", "b")
    assert hub.viewers("room1") == 2
    now[0] += 9.5
    hub.touch_hls("room1", "b")
    now[0] += 1
    assert hub.viewers("room1") == 1 and hub.knows_hls("room1", "b") and not hub.knows_hls("room1", "a")


# -- the callback client --------------------------------------------------------------------------


def _patched_callback(app: CallbackReceiver, clock: FixedClock) -> EdgeCallback:
    callback = EdgeCallback("http://appserver/api/v1/live/handlePushStreamEventCallback", host="push.example.com", auth_key="cbkey", clock=clock)
    original = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        return original(transport=httpx.ASGITransport(app=app), **kwargs)

    callback._client_factory = client  # type: ignore[attr-defined]
    return callback


def test_callback_posts_signed_events_in_order() -> None:
    clock = FixedClock(NOW)
    app = CallbackReceiver()
    callback = _patched_callback(app, clock)

    async def run() -> None:
        callback.send({"action": "publish", "id": "room1"})
        callback.send({"action": "publish_done", "id": "room1"})
        await callback.aclose()

    asyncio.run(run())
    assert [body["action"] for _, body in app.requests] == ["publish", "publish_done"]
    for headers, _ in app.requests:
        assert headers["ali-live-timestamp"] == str(NOW)
        assert headers["ali-live-signature"] == callback_signature("push.example.com", NOW, "cbkey")
    assert [r.status for r in callback.history] == [200, 200]


def test_callback_failures_are_kept_never_raised() -> None:
    app = CallbackReceiver(status=401)
    callback = _patched_callback(app, FixedClock(NOW))
    unreachable = EdgeCallback("http://127.0.0.1:9/nothing", host="h", auth_key="k", timeout=2)

    async def run() -> None:
        callback.send({"action": "publish", "id": "room1"})
        unreachable.send({"action": "publish", "id": "room1"})
        await callback.aclose()
        await unreachable.aclose()

    asyncio.run(run())
    assert callback.history[0].status == 401
    assert unreachable.history[0].status == 0 and unreachable.history[0].error


# -- MediaEdge without media ----------------------------------------------------------------------


def test_media_edge_starts_and_stops_on_a_free_port() -> None:
    async def run() -> None:
        edge = MediaEdge(push_auth_key="a", pull_auth_key="b", rtmp_port=0)
        await edge.start()
        assert edge.rtmp_port > 0 and edge.live_streams() == [] and edge.viewers("x") == 0
        assert "rtmp://127.0.0.1:" in repr(edge)
        edge.close_stream("nobody")  # nothing live: nothing happens
        await edge.stop()

    asyncio.run(run())


def test_find_ffmpeg_names_the_extra_when_nothing_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from livekit_demo.edge import pusher

    monkeypatch.setattr(pusher.shutil, "which", lambda name: None)
    real_import = builtins.__import__

    def no_imageio(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "imageio_ffmpeg":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_imageio)
    with pytest.raises(MediaToolMissing, match=r"livekit_demo\[media\]"):
        find_ffmpeg()


def test_a_big_gop_never_drops_a_new_viewer() -> None:
    async def run() -> None:
        hub = Hub(max_streams=1, max_viewers=2, viewer_queue_bytes=300)
        stream = hub.open("room1", lambda: None)
        for ts in range(0, 400, 40):
            stream.publish(_video(ts == 0, ts=ts))  # a GOP of ~1 KB, over the 300-byte bound
        viewer = hub.subscribe("room1", "flv")
        assert not viewer.closed and len(await viewer.batch()) == 10
        stream.publish(_video(False, ts=400))
        assert not viewer.closed

    asyncio.run(run())
