"""QR codes that show themselves: an SVG in a notebook, block characters in a terminal.

A phone scans one to get a URL without typing it: the LAN base URL into a client's settings, or a
push URL into a pusher app. segno draws the symbol; this adds the displays segno lacks.

    >>> print(qr_code("http://192.168.1.5:8080").terminal().splitlines()[0][:8])
    ████████
"""

from __future__ import annotations

import html
import io
from typing import Any

from .exceptions import LivekitDemoError

__all__ = ["QRCode", "qr_code"]


class QRCode:
    """The QR code of `text`; shows as an SVG with its text beneath in a notebook."""

    def __init__(self, text: str, *, scale: int = 4) -> None:
        try:
            import segno
        except ImportError:  # pragma: no cover - segno is a dependency; a broken install says how to fix it
            raise LivekitDemoError("QR codes need segno: pip install segno") from None
        self.text = text
        self.scale = scale
        # Error level M: still scans from a projector screen with a bit of glare.
        self._symbol: Any = segno.make(text, error="m")

    def svg(self) -> str:
        """The symbol as an inline SVG element."""
        return str(self._symbol.svg_inline(scale=self.scale))

    def terminal(self) -> str:
        """The symbol in block characters, two modules per character row, for a terminal."""
        out = io.StringIO()
        self._symbol.terminal(out=out, compact=True)
        return out.getvalue()

    def _repr_html_(self) -> str:
        return f"<figure style='margin:0'>{self.svg()}<figcaption><code>{html.escape(self.text)}</code></figcaption></figure>"

    def __repr__(self) -> str:
        return f"QRCode({self.text!r})"


def qr_code(text: str, *, scale: int = 4) -> QRCode:
    """A `QRCode` of `text` (a URL), ready to show in a notebook cell or print with `.terminal()`."""
    return QRCode(text, scale=scale)
