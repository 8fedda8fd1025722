"""A live chart of an audience run (pv, uv, likes, online viewers) and the panel's control that starts one.

The chart is matplotlib: the Jupyter world already has it (and this project does, for the
benchmarks' plots), it needs no JupyterLab extension of its own, and it renders the same in a
browser, in a saved notebook and in a headless test. Each redraw renders a `Figure` with the Agg
backend to PNG and sets an `ipywidgets.Image`'s value: setting a trait is one comm message, safe
from the simulator's thread, with no pyplot state and no notebook output capture involved.
"""

from __future__ import annotations

import html
import io
import threading
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from .._platform import threads_available
from ..audience import Audience, Sample
from ._base import Section, Session, on_click

__all__ = ["AudienceChart", "AudienceControl", "audience_chart", "render_timeline"]


def render_timeline(samples: Sequence[Sample], *, title: str = "", width: float = 7.5, height: float = 4.5) -> bytes:
    """PNG of a timeline: pv, uv and online viewers above, likes below (likes run to thousands)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - the lab extra installs it
        raise ImportError('the audience chart needs matplotlib: pip install "livekit_demo[lab]"') from exc
    figure = Figure(figsize=(width, height), dpi=80, layout="constrained")
    FigureCanvasAgg(figure)
    counts, likes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    t = [s.t for s in samples]
    counts.plot(t, [s.pv for s in samples], label="pv (visits)", color="#1f77b4")
    counts.plot(t, [s.uv for s in samples], label="uv (distinct viewers)", color="#2ca02c")
    if samples and samples[-1].online is not None:
        counts.plot(t, [s.online for s in samples], label="online (heartbeat < 30 s ago)", color="#d62728")
    counts.plot(t, [s.present for s in samples], label="in the room (simulated)", color="#d62728", linestyle=":", alpha=0.6)
    counts.set_ylabel("viewers")
    counts.legend(loc="upper left", fontsize="small")
    counts.grid(alpha=0.3)
    likes.plot(t, [s.likes for s in samples], label="likes (server)", color="#ff7f0e")
    likes.plot(t, [s.sent_likes for s in samples], label="likes sent", color="#ff7f0e", linestyle=":", alpha=0.6)
    likes.set_ylabel("likes")
    likes.set_xlabel("seconds into the run")
    likes.legend(loc="upper left", fontsize="small")
    likes.grid(alpha=0.3)
    if title:
        counts.set_title(title, fontsize="medium")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class AudienceChart(widgets.VBox):
    """The chart of one audience run, redrawn as samples come in (at most every `min_interval` s), and its notes."""

    def __init__(self, audience: Audience | None = None, *, min_interval: float = 0.5) -> None:
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="640px"))
        self.caption = widgets.HTML()
        self.min_interval = min_interval
        self.audience: Audience | None = None
        self.draws = 0  # how many times the chart was drawn (tests, and a sense of the cost)
        self._lock = threading.Lock()
        self._last_draw = 0.0
        super().__init__([self.caption, self.image])
        if audience is not None:
            self.follow(audience)

    def follow(self, audience: Audience) -> None:
        """Show `audience` from now on, redrawing on its samples and once when it ends."""
        self.audience = audience
        audience.on_sample(lambda _: self._maybe_redraw(audience))
        audience.on_end(lambda _: self._redraw(audience))
        self._redraw(audience)

    def refresh(self) -> None:
        """Draw the followed audience now."""
        if self.audience is not None:
            self._redraw(self.audience)

    def _maybe_redraw(self, audience: Audience) -> None:
        # Drawing costs tens of milliseconds: a fast run samples far more often than that is worth.
        if time.monotonic() - self._last_draw >= self.min_interval:
            self._redraw(audience)
        else:
            self.caption.value = _caption(audience)

    def _redraw(self, audience: Audience) -> None:
        if audience is not self.audience:
            return  # a run this chart no longer shows
        with self._lock:
            samples = list(audience.timeline)
            title = f"{audience.viewers} viewers, seed {audience.seed}, room {audience.room_id[:8]}…"
            self.image.value = render_timeline(samples, title=title)
            self.caption.value = _caption(audience)
            self._last_draw = time.monotonic()
            self.draws += 1


def _caption(audience: Audience) -> str:
    notes = "".join(f"<br><span style='color:#9a6700'>{html.escape(note)}</span>" for note in audience.notes)
    return f"<code>{html.escape(audience.summary())}</code>{notes}"


def audience_chart(audience: Audience) -> AudienceChart:
    """A live chart of `audience`; display it as a cell's last expression."""
    return AudienceChart(audience)


class AudienceControl(Section):
    """Run an audience against the selected room: viewers, duration, seed, time scale; start and stop; the chart.

    `options` go to every `Audience` it starts (tests give a `clock`, a `transport`).
    """

    def __init__(self, session: Session, **options: Any) -> None:
        style = {"description_width": "initial"}
        self.viewers = widgets.BoundedIntText(value=50, min=1, max=500, description="viewers", style=style)
        self.duration = widgets.BoundedFloatText(value=60, min=1, max=3600, description="duration (s)", style=style)
        self.seed = widgets.IntText(value=1, description="seed", style=style)
        self.time_scale = widgets.BoundedFloatText(
            value=1.0, min=0, max=10, step=0.1, description="real s per simulated s", style=style
        )
        self.start_button = widgets.Button(description="Start audience", button_style="primary", icon="users")
        self.stop_button = widgets.Button(description="Stop", disabled=True, icon="stop")
        on_click(self.start_button, self.start)
        on_click(self.stop_button, self.stop)
        self.room_label = widgets.HTML()
        self.chart = AudienceChart()
        self.audience: Audience | None = None
        self._options = options
        super().__init__(
            session,
            [
                self.room_label,
                widgets.HBox([self.viewers, self.duration]),
                widgets.HBox([self.seed, self.time_scale]),
                widgets.HBox([self.start_button, self.stop_button]),
                self.chart,
            ],
        )
        session.observe(lambda _: self._redraw_room(), names="room")
        self._redraw_room()

    def start(self) -> None:
        """Start an audience of the form's size against the selected room, in the background."""
        client, room = self.session.client, self.session.room
        if client is None:
            self.fail("audience: log in first")
            return
        if room is None:
            self.fail("audience: select a room first (Rooms tab)")
            return
        if self.audience is not None and self.audience.running:
            self.fail("audience: one is running; stop it first")
            return
        background = threads_available()
        try:
            audience = Audience(
                client.url,  # its own clients: the session's one belongs to the forms' thread
                str(room["id"]),
                viewers=self.viewers.value,
                duration=self.duration.value,
                seed=self.seed.value,
                # Without threads (a browser tab) the run holds the click: no waiting between steps.
                time_scale=self.time_scale.value if background else 0.0,
                **self._options,
            )
        except ValueError as exc:
            self.fail(f"audience: {exc}")
            return
        self.audience = audience
        self.chart.follow(audience)
        audience.on_end(self._ended)
        self.start_button.disabled, self.stop_button.disabled = True, False
        if not background:
            try:
                audience.run()
            except Exception:
                pass  # _ended, called by the run itself, shows what ended it
            return
        audience.start()
        self.succeed(f"audience: {audience.viewers} viewers started (seed {audience.seed})")

    def stop(self) -> None:
        """Stop the running audience (its viewers' presence then expires within 30 s)."""
        if self.audience is not None:
            self.audience.stop()

    def _ended(self, audience: Audience) -> None:
        self.start_button.disabled, self.stop_button.disabled = False, True
        if audience.error is not None:
            self.fail(f"audience: {audience.error}")
        else:
            self.succeed(f"audience: {audience.summary()}")

    def _redraw_room(self) -> None:
        room = self.session.room
        if room is None:
            self.room_label.value = "<i>select a room in the Rooms tab (start it to see it live)</i>"
        else:
            title, room_id = html.escape(str(room.get("title"))), html.escape(str(room.get("id")))
            self.room_label.value = f"audience for <b>{title}</b> <code>{room_id}</code>"

    def close(self) -> None:
        """Stop a running audience and close the widgets."""
        self.stop()
        super().close()
