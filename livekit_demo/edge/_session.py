"""One RTMP connection: the commands of a publisher (ffmpeg, OBS, a phone) or a player.

connect -> (releaseStream, FCPublish) -> createStream -> publish | play -> ... -> (FCUnpublish,
deleteStream | closeStream) or a closed socket. A refused publish or play gets an `onStatus`
error and the connection is closed, as a CDN does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import TYPE_CHECKING

from . import _rtmp
from ._amf0 import AMF0Error
from ._auth import check_type_a, split_query
from ._flv import AUDIO, VIDEO, Tag, metadata_tag
from ._hub import Refused, Stream, Viewer

if TYPE_CHECKING:
    from . import MediaEdge

__all__ = ["RtmpSession"]

log = logging.getLogger("livekit_demo.edge")

OUT_CHUNK_SIZE = 4096  # bigger chunks than the default 128: fewer headers per video frame
WINDOW = 2_500_000  # bytes between acknowledgements, both ways
STREAM_ID = 1  # the one message stream createStream hands out


class RtmpSession:
    """Serves one RTMP connection until it closes."""

    def __init__(self, edge: MediaEdge, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.edge = edge
        self.reader = reader
        self.writer = writer
        self.chunks = _rtmp.ChunkReader(reader)
        peer = writer.get_extra_info("peername")
        self.ip = peer[0] if isinstance(peer, tuple) else ""
        self.app = ""
        self.tc_query: dict[str, str] = {}
        self.peer_window = WINDOW
        self.acked = 0
        self.stream: Stream | None = None
        self.viewer: Viewer | None = None
        self.viewer_name = ""
        self._sender: asyncio.Task[None] | None = None
        self._first_tag = True

    def close(self) -> None:
        """Close the connection (thread: the edge's loop)."""
        self.writer.close()

    async def run(self) -> None:
        """Handshake, then read messages until the peer leaves or breaks the protocol."""
        try:
            await _rtmp.server_handshake(self.reader, self.writer)
            while True:
                message = await self.chunks.read_message()
                await self._handle(message)
                if self.chunks.bytes_read - self.acked >= self.peer_window:
                    self.acked = self.chunks.bytes_read
                    self.writer.write(_rtmp.control(_rtmp.ACK, self.acked & 0xFFFFFFFF))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except (_rtmp.RtmpError, AMF0Error, ValueError) as exc:
            log.info("RTMP connection from %s closed: %s", self.ip, exc)
        finally:
            self._finish()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    def _finish(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            self.edge._unpublished(stream, self._first_tag)
        if self.viewer is not None:
            self.edge.hub.unsubscribe(self.viewer_name, self.viewer)
            self.viewer = None
        if self._sender is not None:
            self._sender.cancel()

    async def _handle(self, message: _rtmp.Message) -> None:
        kind = message.type_id
        if kind in (AUDIO, VIDEO):
            if self.stream is not None:
                self._relay(Tag(kind, message.timestamp, message.payload))
        elif kind in (_rtmp.DATA_AMF0, _rtmp.DATA_AMF3):
            if self.stream is not None:
                values = message.amf()
                tag = metadata_tag(values)
                if tag is not None:
                    self.stream.metadata = dict(values[-1]) if isinstance(values[-1], dict) else None
                    self._relay(tag)
        elif kind in (_rtmp.COMMAND_AMF0, _rtmp.COMMAND_AMF3):
            await self._command(message)
        elif kind == _rtmp.SET_CHUNK_SIZE:
            size = struct.unpack(">I", message.payload[:4])[0] & 0x7FFFFFFF
            if size < 1:
                raise _rtmp.RtmpError("chunk size 0")
            self.chunks.chunk_size = size
        elif kind == _rtmp.ABORT:
            self.chunks.abort(struct.unpack(">I", message.payload[:4])[0])
        elif kind == _rtmp.WINDOW_ACK_SIZE:
            self.peer_window = max(1, struct.unpack(">I", message.payload[:4])[0])
        elif kind == _rtmp.USER_CONTROL and message.payload[:2] == b"\x00\x06":  # Ping Request
            self.writer.write(_rtmp.user_control(7, struct.unpack(">I", message.payload[2:6])[0]))

    def _relay(self, tag: Tag) -> None:
        assert self.stream is not None
        if self._first_tag:
            self._first_tag = False
            self.edge._went_live(self.stream)
        self.stream.publish(tag)

    async def _command(self, message: _rtmp.Message) -> None:
        values = message.amf()
        if len(values) < 2 or not isinstance(values[0], str):
            return
        name, transaction = values[0], values[1]
        args = values[3:]  # values[2] is the command object, null after connect
        if name == "connect":
            self._connect(transaction, values[2] if len(values) > 2 and isinstance(values[2], dict) else {})
        elif name in ("releaseStream", "FCPublish", "FCUnpublish") and transaction:
            self._send(_rtmp.command("_result", transaction, None, None))
        elif name == "createStream":
            self._send(_rtmp.command("_result", transaction, None, STREAM_ID))
        elif name == "publish" and args and isinstance(args[0], str):
            self._publish(args[0], message.stream_id or STREAM_ID)
        elif name == "play" and args and isinstance(args[0], str):
            self._play(args[0], message.stream_id or STREAM_ID)
        elif name in ("deleteStream", "closeStream"):
            self._finish()
        # Anything else (getStreamLength, _checkbw, FCSubscribe...) needs no answer for ffmpeg or OBS.

    def _send(self, data: bytes) -> None:
        self.writer.write(data)

    def _connect(self, transaction: float, props: dict) -> None:
        app = str(props.get("app", ""))
        self.app, app_query = split_query(app)
        self.app = self.app.strip("/")
        tc_url = str(props.get("tcUrl", ""))
        self.tc_query = {**split_query(tc_url)[1], **app_query}
        self._send(
            _rtmp.control(_rtmp.WINDOW_ACK_SIZE, WINDOW)
            + _rtmp.peer_bandwidth(WINDOW)
            + _rtmp.control(_rtmp.SET_CHUNK_SIZE, OUT_CHUNK_SIZE)
            + _rtmp.command(
                "_result", transaction,
                {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
                {"level": "status", "code": "NetConnection.Connect.Success", "description": "Connection succeeded.", "objectEncoding": 0.0},
                chunk_size=OUT_CHUNK_SIZE,
            )
        )

    def _status(self, stream_id: int, level: str, code: str, description: str) -> None:
        info = {"level": level, "code": code, "description": description}
        self._send(_rtmp.command("onStatus", 0, None, info, stream_id=stream_id, chunk_size=OUT_CHUNK_SIZE))

    def _refuse(self, stream_id: int, code: str, reason: str, what: str) -> None:
        log.info("RTMP %s refused from %s: %s", what, self.ip, reason)
        self._status(stream_id, "error", code, reason)
        # Let the status reach the peer before the close: the transport flushes, then closes.
        self.writer.close()

    def _auth(self, raw_name: str, key: str, other_key: str) -> tuple[str, str | None]:
        stream, query = split_query(raw_name)
        stream = stream.strip("/")
        auth_key = query.get("auth_key", self.tc_query.get("auth_key"))
        if self.app != self.edge.app_name or not stream or "/" in stream:
            return stream, f"no such stream: /{self.app}/{stream} (the edge serves /{self.edge.app_name}/<id>)"
        now = self.edge.clock.timestamp()
        return stream, check_type_a(f"/{self.app}/{stream}", auth_key, key, now, other_key=other_key)

    def _publish(self, raw_name: str, stream_id: int) -> None:
        if self.stream is not None or self.viewer is not None:
            self._refuse(stream_id, "NetStream.Publish.BadName", "this connection already publishes or plays", "publish")
            return
        name, reason = self._auth(raw_name, self.edge.push_auth_key, self.edge.pull_auth_key)
        if reason is not None:
            self._refuse(stream_id, "NetStream.Publish.Unauthorized", reason, "publish")
            return
        try:
            self.stream = self.edge.hub.open(name, self.close, self.ip)
        except Refused as refused:
            self._refuse(stream_id, refused.code, refused.reason, "publish")
            return
        self.edge._published(self.stream)
        self._status(stream_id, "status", "NetStream.Publish.Start", f"/{self.app}/{name} is now published.")

    def _play(self, raw_name: str, stream_id: int) -> None:
        if self.stream is not None or self.viewer is not None:
            self._refuse(stream_id, "NetStream.Play.Failed", "this connection already publishes or plays", "play")
            return
        name, reason = self._auth(raw_name, self.edge.pull_auth_key, self.edge.push_auth_key)
        if reason is not None:
            self._refuse(stream_id, "NetStream.Play.Failed", f"Unauthorized: {reason}", "play")
            return
        try:
            self.viewer = self.edge.hub.subscribe(name, "rtmp")
        except Refused as refused:
            self._refuse(stream_id, refused.code, refused.reason, "play")
            return
        self.viewer_name = name
        self._send(_rtmp.user_control(0, stream_id))  # Stream Begin
        self._status(stream_id, "status", "NetStream.Play.Reset", f"Playing and resetting /{self.app}/{name}.")
        self._status(stream_id, "status", "NetStream.Play.Start", f"Started playing /{self.app}/{name}.")
        self._sender = asyncio.get_running_loop().create_task(self._pump(self.viewer))

    async def _pump(self, viewer: Viewer) -> None:
        """Write the viewer's queue to the socket; drain's back-pressure fills the queue, which drops it."""
        try:
            while batch := await viewer.batch():
                self.writer.write(b"".join(tag.rtmp(OUT_CHUNK_SIZE) for tag in batch))
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.writer.close()  # the stream ended, the viewer was dropped, or the socket broke

