"""QR codes show themselves: an SVG with its text in a notebook, block characters in a terminal."""

from __future__ import annotations

import segno

from livekit_demo.qr import qr_code


def test_a_qr_code_shows_as_svg_with_its_text_and_reprs_its_text() -> None:
    code = qr_code("http://192.168.1.5:8080")
    html = code._repr_html_()
    assert html.count("<svg") == 1 and "<code>http://192.168.1.5:8080</code>" in html
    assert repr(code) == "QRCode('http://192.168.1.5:8080')"


def test_the_terminal_form_is_the_same_symbol() -> None:
    text = qr_code("http://192.168.1.5:8080").terminal()
    rows = text.splitlines()
    symbol = segno.make("http://192.168.1.5:8080", error="m")
    # Two modules per character row, plus the quiet zone of 4 modules on each side.
    assert len(rows) == (symbol.symbol_size()[1] + 1) // 2
    assert set(text) <= set("█▀▄ \n")
