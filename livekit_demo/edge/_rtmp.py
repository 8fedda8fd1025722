"""RTMP 1.0 framing: the simple handshake, chunk streams in and out, and the messages a server sends.

Following the public RTMP 1.0 specification (Adobe, 2012). A message is cut into chunks of at
most the sender's chunk size; each chunk names its chunk stream and carries a header of type 0
(absolute timestamp, length, type, message stream), 1 (delta, length, type), 2 (delta) or 3 (none:
everything as the previous chunk of that chunk stream). What is "previous" is per chunk stream, so
the reader keeps one small state per chunk stream id.
"""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass, field

from . import _amf0

__all__ = [
    "RtmpError",
    "Message",
    "ChunkReader",
    "encode_message",
    "server_handshake",
    "SET_CHUNK_SIZE",
    "ABORT",
    "ACK",
    "USER_CONTROL",
    "WINDOW_ACK_SIZE",
    "SET_PEER_BANDWIDTH",
    "AUDIO",
    "VIDEO",
    "DATA_AMF3",
    "COMMAND_AMF3",
    "DATA_AMF0",
    "COMMAND_AMF0",
]

# Message type ids (RTMP 1.0 sections 5.4 and 7.1).
SET_CHUNK_SIZE, ABORT, ACK, USER_CONTROL, WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 1, 2, 3, 4, 5, 6
AUDIO, VIDEO, DATA_AMF3, COMMAND_AMF3, DATA_AMF0, COMMAND_AMF0 = 8, 9, 15, 17, 18, 20

HANDSHAKE_SIZE = 1536
MAX_CHUNK_SIZE = 0x7FFFFFFF
MAX_MESSAGE_SIZE = 8 * 1024 * 1024  # an 8 MB frame is no stream we serve; refusing it bounds memory
_EXTENDED = 0xFFFFFF


class RtmpError(Exception):
    """The peer broke the protocol; the connection is closed."""


@dataclass
class Message:
    """One whole RTMP message, reassembled from its chunks."""

    type_id: int
    timestamp: int
    stream_id: int
    payload: bytes
    csid: int = 0

    def amf(self) -> list:
        """The AMF0 values of a command or data message (AMF3 ones start with one 0 byte, then AMF0)."""
        body = self.payload[1:] if self.type_id in (COMMAND_AMF3, DATA_AMF3) and self.payload[:1] == b"\x00" else self.payload
        return _amf0.decode(body)


async def server_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The simple handshake: C0+C1 in, S0+S1+S2 out (S2 echoes C1), C2 in.

    S1 carries version zero, which tells digest-capable clients (ffmpeg, OBS) not to look for
    the Flash-era digest: the simple handshake is enough for every publisher and player we serve.
    """
    c0c1 = await reader.readexactly(1 + HANDSHAKE_SIZE)
    if c0c1[0] != 3:
        raise RtmpError(f"RTMP version {c0c1[0]} requested; only 3 is spoken")
    s1 = struct.pack(">II", 0, 0) + os.urandom(HANDSHAKE_SIZE - 8)
    writer.write(b"\x03" + s1 + c0c1[1:])
    await writer.drain()
    await reader.readexactly(HANDSHAKE_SIZE)


@dataclass
class _ChunkStream:
    timestamp: int = 0
    delta: int = 0  # the last timestamp field read: what a type-3 header that starts a message adds
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    buffer: bytearray = field(default_factory=bytearray)


class ChunkReader:
    """Reads chunks off a stream reader and hands back whole messages; counts bytes for acknowledgements."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self.chunk_size = 128  # the default until the peer sends Set Chunk Size
        self.bytes_read = 0
        self._streams: dict[int, _ChunkStream] = {}

    async def _read(self, count: int) -> bytes:
        data = await self._reader.readexactly(count)
        self.bytes_read += count
        return data

    def abort(self, csid: int) -> None:
        """Drop the partly received message of one chunk stream (the Abort message)."""
        state = self._streams.get(csid)
        if state is not None:
            state.buffer.clear()

    async def read_message(self) -> Message:
        """The next whole message, reading as many chunks (of any chunk streams) as it takes."""
        while True:
            message = await self._read_chunk()
            if message is not None:
                return message

    async def _read_chunk(self) -> Message | None:
        first = (await self._read(1))[0]
        fmt, csid = first >> 6, first & 0x3F
        if csid == 0:
            csid = 64 + (await self._read(1))[0]
        elif csid == 1:
            low, high = await self._read(2)
            csid = 64 + low + high * 256
        state = self._streams.get(csid)
        if state is None:
            if fmt != 0:
                raise RtmpError(f"chunk stream {csid} starts with a type-{fmt} header")
            state = self._streams[csid] = _ChunkStream()
        starting = not state.buffer
        if fmt < 3:
            header = await self._read((11, 7, 3)[fmt])
            field_value = int.from_bytes(header[0:3], "big")
            if fmt <= 1:
                state.length = int.from_bytes(header[3:6], "big")
                state.type_id = header[6]
                if state.length > MAX_MESSAGE_SIZE:
                    raise RtmpError(f"message of {state.length} bytes refused")
            if fmt == 0:
                state.stream_id = int.from_bytes(header[7:11], "little")
            state.extended = field_value == _EXTENDED
            if state.extended:
                field_value = int.from_bytes(await self._read(4), "big")
            if not starting:
                raise RtmpError(f"chunk stream {csid}: a new header in the middle of a message")
            state.delta = field_value
            state.timestamp = field_value if fmt == 0 else (state.timestamp + field_value) & 0xFFFFFFFF
        else:
            if state.extended:
                await self._read(4)  # repeated on every chunk while the header's timestamp is extended
            if starting:
                state.timestamp = (state.timestamp + state.delta) & 0xFFFFFFFF
        remaining = state.length - len(state.buffer)
        state.buffer += await self._read(min(self.chunk_size, remaining))
        if len(state.buffer) < state.length:
            return None
        payload = bytes(state.buffer)
        state.buffer.clear()
        return Message(state.type_id, state.timestamp, state.stream_id, payload, csid)


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes(((fmt << 6) | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    return bytes(((fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))


def encode_message(csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes, chunk_size: int) -> bytes:
    """One message as chunks: a type-0 header (absolute timestamp), then type-3 continuations."""
    timestamp &= 0xFFFFFFFF
    extended = timestamp >= _EXTENDED
    extra = struct.pack(">I", timestamp) if extended else b""
    header = (
        _basic_header(0, csid)
        + (_EXTENDED if extended else timestamp).to_bytes(3, "big")
        + len(payload).to_bytes(3, "big")
        + bytes((type_id,))
        + struct.pack("<I", stream_id)
        + extra
    )
    if len(payload) <= chunk_size:
        return header + payload
    continuation = _basic_header(3, csid) + extra
    parts = [header, payload[:chunk_size]]
    for start in range(chunk_size, len(payload), chunk_size):
        parts += (continuation, payload[start : start + chunk_size])
    return b"".join(parts)


def control(type_id: int, value: int) -> bytes:
    """A protocol control message with one 4-byte value (chunk size, ack, window size)."""
    return encode_message(2, type_id, 0, 0, struct.pack(">I", value), 128)


def peer_bandwidth(size: int) -> bytes:
    """Set Peer Bandwidth, limit type dynamic."""
    return encode_message(2, SET_PEER_BANDWIDTH, 0, 0, struct.pack(">IB", size, 2), 128)


def user_control(event: int, *values: int) -> bytes:
    """A User Control message: Stream Begin (0), Stream EOF (1), Ping Response (7)..."""
    return encode_message(2, USER_CONTROL, 0, 0, struct.pack(">H", event) + b"".join(struct.pack(">I", v) for v in values), 128)


def command(name: str, transaction: float, *args: object, stream_id: int = 0, chunk_size: int = 128) -> bytes:
    """An AMF0 command message (on chunk stream 3, or 5 for a message stream's status)."""
    payload = _amf0.encode(name, transaction, *args)
    return encode_message(5 if stream_id else 3, COMMAND_AMF0, stream_id, 0, payload, chunk_size)
