"""The last answer as indented JSON: what the server really said, a refused call's Status body included."""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as widgets

from ._base import Session

__all__ = ["JsonView"]


class JsonView(widgets.HTML):
    """Shows `session.answer`; `data` is the answer itself."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.data: Any = None
        session.observe(lambda change: self.show(change["new"]), names="answer")
        self.show(session.answer)

    def show(self, data: Any) -> None:
        self.data = data
        if data is None:
            self.value = "<i>no answer yet</i>"
            return
        text = json.dumps(data, indent=2, ensure_ascii=False)
        self.value = f"<pre style='white-space:pre-wrap;word-break:break-all'>{html.escape(text, quote=False)}</pre>"
