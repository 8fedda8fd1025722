"""Every URL of the selected room, each with the explainer's verdict, and a QR code of the push URL."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..signing import UrlExplanation, explain_url
from ._base import Section, Session, on_click

__all__ = ["UrlPanel", "room_urls", "qr_svg"]

_VERDICT_COLORS = {"valid": "#1a7f37", "unsigned": "#9a6700", "unchecked": "#57606a"}


def room_urls(room: dict[str, Any]) -> dict[str, str]:
    """The room's URLs by dotted name (``push_url_info.rtmp_url``...), in the order the answer has them."""
    found: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        elif isinstance(value, str) and "://" in value:
            found[prefix] = value

    for part in ("push_url_info", "pull_url_info", "link_info"):
        walk(part, room.get(part))
    return found


def qr_svg(text: str, scale: int = 3) -> str:
    """An inline SVG QR code of `text` (for a phone's pusher app to scan)."""
    try:
        import segno
    except ImportError:  # pragma: no cover - the lab extra installs it
        return '<i>QR codes need segno: pip install "livekit_demo[lab]"</i>'
    return str(segno.make(text, error="m").svg_inline(scale=scale))


class UrlPanel(Section):
    """URLs of `session.room` with verdicts; keys are known when the server runs in this kernel."""

    def __init__(self, session: Session) -> None:
        self.table = widgets.HTML()
        self.qr = widgets.HTML()
        self.explanations: dict[str, UrlExplanation] = {}
        self.any_url = widgets.Text(placeholder="paste any URL to explain it", layout=widgets.Layout(width="40em"))
        self.explain_button = widgets.Button(description="Explain")
        self.explained = widgets.HTML()
        on_click(self.explain_button, lambda: self._explain_pasted())
        pasted = widgets.HBox([self.any_url, self.explain_button])
        super().__init__(session, [self.qr, self.table, pasted, self.explained])
        session.observe(lambda change: self.show(change["new"]), names="room")
        self.show(session.room)

    def explain(self, url: str) -> UrlExplanation:
        """The verdict with the configured keys and the server's clock when the server is ours."""
        app_server = getattr(self.session.server, "app_server", None)
        if app_server is not None:
            return app_server.streams.explain(url)
        return explain_url(url)  # keys unknown: parts and expiry only

    def show(self, room: dict[str, Any] | None) -> None:
        if room is None:
            self.explanations = {}
            self.table.value = "<i>select a room to see its URLs</i>"
            self.qr.value = ""
            return
        urls = room_urls(room)
        self.explanations = {name: self.explain(url) for name, url in urls.items()}
        rows = "".join(self._row(name, url, self.explanations[name]) for name, url in urls.items())
        # HTML widgets inherit the 28px line height of an input row; a long URL wrapping over
        # three lines then looked like three separate entries.
        self.table.value = f"<table style='line-height:1.4'>{rows}</table>"
        push = urls.get("push_url_info.rtmp_url")
        if push:
            self.qr.value = f"<div><b>RTMP push URL</b>, for a pusher app on a phone:</div>{qr_svg(push)}"
        else:
            self.qr.value = "<i>push URLs are answered only to the room's anchor (or an admin)</i>"

    @staticmethod
    def _row(name: str, url: str, explanation: UrlExplanation) -> str:
        verdict = explanation.verdict
        color = _VERDICT_COLORS.get(verdict, "#cf222e")
        expiry = f", expires {explanation.expires_at:%Y-%m-%d %H:%M} UTC" if explanation.expires_at else ""
        return (
            f"<tr><th style='text-align:left;vertical-align:top'>{html.escape(name)}</th>"
            f"<td style='text-align:left;word-break:break-all'><code>{html.escape(url)}</code> "
            # The browser copies from the button's own data attribute: no kernel round trip, and the
            # URL is escaped once as an attribute value (quote=True), never pasted into script text.
            f"<button class='livekit-demo-copy' title='copy this URL' data-url=\"{html.escape(url, quote=True)}\" "
            "onclick='navigator.clipboard.writeText(this.dataset.url)'>copy</button><br>"
            f"<span style='color:{color}'>{html.escape(verdict)}</span>"
            f"<small> {html.escape(explanation.reason)}{expiry}</small></td></tr>"
        )

    def _explain_pasted(self) -> None:
        url = self.any_url.value.strip()
        if not url:
            self.fail("explain: paste a URL first")
            return
        explanation = self.explain(url)
        self.explained.value = explanation._repr_html_()
        self.succeed(f"explain: {explanation.verdict}")
