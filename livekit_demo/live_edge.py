"""Wiring the local media edge into one AppServer (SPEC 13): built from settings, run on the server's loop.

The edge (`livekit_demo.edge`) knows nothing of rooms, storage or settings; this module is where the
two meet, through narrow seams only:

- the edge's viewer counts become an online source of the rooms' metrics;
- a room deleted while live disconnects its publisher (a listener the rooms layer calls);
- the edge reports publish / publish_done to *our own* callback URL over HTTP, signed like the CDN;
- while it runs, the URLs rooms answer with point at it (`StreamUrls.edge`).

The api layer starts and stops a `LiveEdge` in the app's lifespan, so the edge runs on the same
event loop as the AppServer (inside a notebook: the same background thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .callbacks import CALLBACK_NAME
from .serving import is_loopback
from .streams import EdgeAddress

if TYPE_CHECKING:
    from .app_server import AppServer
    from .edge import MediaEdge

__all__ = ["LiveEdge", "edge_host_for", "ingest_lines"]

log = logging.getLogger("livekit_demo.edge")
_WILDCARDS = ("0.0.0.0", "::", "")


def edge_host_for(bind_host: str) -> str:
    """The address our own processes use to reach a server bound to `bind_host` (loopback for a wildcard)."""
    if bind_host in _WILDCARDS or is_loopback(bind_host):
        return "127.0.0.1"
    return bind_host


class LiveEdge:
    """One AppServer's media edge: made from its settings, hooked into its rooms, started by the app's lifespan.

    `bind_host` is where the AppServer listens (the edge's RTMP listener binds there too) and
    `http_port` its HTTP port (which serves FLV, HLS and the player's MP4). `announce` is given the
    RTMP ingest lines once the edge listens (the `serve` banner).
    """

    def __init__(self, server: AppServer, *, bind_host: str, http_port: int, announce: Callable[[str], None] | None = None) -> None:
        from .edge import EdgeCallback, MediaEdge

        self.server = server
        self.bind_host = bind_host
        self.http_port = http_port
        self.announce = announce
        ls, es = server.settings.live_stream, server.settings.edge
        own = edge_host_for(bind_host)
        shown = f"[{own}]" if ":" in own else own
        self.callback_url = f"http://{shown}:{http_port}/api/v1/live/{CALLBACK_NAME}"
        callback = EdgeCallback(self.callback_url, host=ls.callback_signing_host, auth_key=ls.callback_signing_key, clock=server.clock)
        self.media: MediaEdge = MediaEdge(
            host=bind_host or "0.0.0.0",
            rtmp_port=es.rtmp_port,
            app_name=ls.app_name,
            push_auth_key=ls.push_auth_key,
            pull_auth_key=ls.pull_auth_key,
            max_streams=es.max_streams,
            max_viewers=es.max_viewers,
            callback=callback,
            clock=server.clock,
        )
        server.rooms.metrics.add_online_source(self.media.viewers)
        server.rooms.on_delete(self.media.close_stream)

    @property
    def app_name(self) -> str:
        """The stream app the edge serves (`/{app_name}/...`)."""
        return self.media.app_name

    @property
    def http_app(self) -> Any:
        """The edge's ASGI app for HTTP-FLV, HLS and fMP4 pulls, to mount at `/{app_name}`."""
        return self.media.http_app

    @property
    def rtmp_port(self) -> int:
        """The bound RTMP port (after `start`)."""
        return self.media.rtmp_port

    @property
    def running(self) -> bool:
        return self.server.streams.edge is not None

    async def start(self) -> None:
        """Listen for RTMP on the running loop; from now on the rooms' URLs point at the edge."""
        await self.media.start()
        self.server.streams.edge = EdgeAddress(self.media.rtmp_port, self.http_port, edge_host_for(self.bind_host))
        if self.announce is not None:
            for line in ingest_lines(self.bind_host, self.media.rtmp_port, self.app_name):
                self.announce(line)

    async def stop(self) -> None:
        """Point URLs back at the domains, then close publishers, viewers and the listener."""
        self.server.streams.edge = None
        await self.media.stop()

    def __repr__(self) -> str:
        return f"LiveEdge({self.media!r}, callback={self.callback_url!r})"


def ingest_lines(bind_host: str, rtmp_port: int, app: str) -> list[str]:
    """The banner's lines for RTMP ingest: the server to paste into OBS, one per address for a wildcard host."""
    from .serving import local_addresses

    hosts = (local_addresses() or ["127.0.0.1"]) if bind_host in _WILDCARDS else [edge_host_for(bind_host)]
    lines = []
    for host in hosts:
        shown = f"[{host}]" if ":" in host else host
        lines.append(f"RTMP ingest (OBS server): rtmp://{shown}:{rtmp_port}/{app}  (stream key: <room id>?auth_key=..., from the room's push URL)")
    return lines
