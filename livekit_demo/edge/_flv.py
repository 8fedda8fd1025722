"""FLV tags: the unit the edge relays, and the HTTP-FLV byte format (FLV file format, version 10).

An RTMP audio, video or data message and an FLV tag carry the same payload, so the edge keeps
each message once, as a `Tag`, and writes it out as FLV bytes or RTMP chunks per viewer kind,
caching each encoding: fifty viewers of one stream share one encoded copy.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from . import _amf0
from ._rtmp import encode_message

__all__ = ["AUDIO", "VIDEO", "DATA", "Tag", "flv_header", "FlvReader"]

AUDIO, VIDEO, DATA = 8, 9, 18
_AAC, _AVC = 10, 7


def flv_header(*, audio: bool = True, video: bool = True) -> bytes:
    """The 9-byte FLV header plus PreviousTagSize0."""
    flags = (4 if audio else 0) | (1 if video else 0)
    return b"FLV\x01" + bytes((flags,)) + b"\x00\x00\x00\x09" + b"\x00\x00\x00\x00"


@dataclass(eq=False)
class Tag:
    """One audio, video or data message of a stream, with its timestamp in milliseconds."""

    type_id: int
    timestamp: int
    payload: bytes
    _flv: bytes | None = field(default=None, repr=False)
    _rtmp: tuple[int, bytes] | None = field(default=None, repr=False)

    @property
    def is_keyframe(self) -> bool:
        """A video keyframe (a new viewer can start decoding here)."""
        return self.type_id == VIDEO and len(self.payload) > 1 and self.payload[0] >> 4 == 1 and not self.is_video_header

    @property
    def is_video_header(self) -> bool:
        """The AVC sequence header (SPS/PPS), which every viewer needs before any frame."""
        return self.type_id == VIDEO and len(self.payload) > 1 and self.payload[0] & 0x0F == _AVC and self.payload[1] == 0

    @property
    def is_audio_header(self) -> bool:
        """The AAC sequence header (AudioSpecificConfig)."""
        return self.type_id == AUDIO and len(self.payload) > 1 and self.payload[0] >> 4 == _AAC and self.payload[1] == 0

    def restamped(self, timestamp: int) -> Tag:
        """The same payload at another timestamp (headers replayed to a late viewer)."""
        return Tag(self.type_id, timestamp, self.payload)

    def flv(self) -> bytes:
        """The FLV tag bytes, with its PreviousTagSize; computed once."""
        if self._flv is None:
            size = len(self.payload)
            ts = self.timestamp & 0xFFFFFFFF
            header = struct.pack(">B", self.type_id) + size.to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
            self._flv = header + bytes((ts >> 24, 0, 0, 0)) + self.payload + struct.pack(">I", size + 11)
        return self._flv

    def rtmp(self, chunk_size: int) -> bytes:
        """The RTMP chunks of this tag on message stream 1; computed once per chunk size."""
        cached = self._rtmp
        if cached is None or cached[0] != chunk_size:
            csid = {AUDIO: 6, VIDEO: 7}.get(self.type_id, 5)
            cached = self._rtmp = (chunk_size, encode_message(csid, self.type_id, 1, self.timestamp, self.payload, chunk_size))
        return cached[1]


def metadata_tag(values: list) -> Tag | None:
    """The onMetaData tag to relay, from a publisher's data message (`@setDataFrame` unwrapped)."""
    if values and values[0] == "@setDataFrame":
        values = values[1:]
    if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
        return Tag(DATA, 0, _amf0.encode("onMetaData", _amf0.ECMAArray(values[1])))
    return None


class FlvReader:
    """An incremental FLV parser (for tests and the benchmark): feed bytes, get whole tags back."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header_seen = False

    def feed(self, data: bytes) -> list[Tag]:
        """The tags completed by `data`."""
        self._buffer += data
        tags: list[Tag] = []
        if not self._header_seen:
            if len(self._buffer) < 13:
                return tags
            if self._buffer[:3] != b"FLV":
                raise ValueError("not an FLV stream")
            del self._buffer[:13]
            self._header_seen = True
        while len(self._buffer) >= 11:
            size = int.from_bytes(self._buffer[1:4], "big")
            if len(self._buffer) < 11 + size + 4:
                break
            ts = int.from_bytes(self._buffer[4:7], "big") | (self._buffer[7] << 24)
            tags.append(Tag(self._buffer[0], ts, bytes(self._buffer[11 : 11 + size])))
            del self._buffer[: 11 + size + 4]
        return tags
