"""What every form shares: the session (client, server, selected room, last answer) and a status line."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import ipywidgets as widgets
from traitlets import Any as AnyTrait
from traitlets import HasTraits, Int

from ..client import ApiError, AppServerClient, ServerUnavailable

__all__ = ["Session", "Section", "on_click"]

T = TypeVar("T")


class Session(HasTraits):
    """State the forms share and observe; a change here redraws whatever depends on it.

    `client` is the logged-in `AppServerClient`; `server` the `ServerHandle` when the server runs
    in this kernel (it lends the URL panel the signing keys); `room` the selected `RoomInfo`;
    `answer` the last answer shown in the JSON view (a refused call's Status body included);
    `rooms_version` grows when rooms are created or deleted, so room lists reload.
    """

    client = AnyTrait(None, allow_none=True)
    server = AnyTrait(None, allow_none=True)
    room = AnyTrait(None, allow_none=True)
    answer = AnyTrait(None, allow_none=True)
    error = AnyTrait(None, allow_none=True)
    rooms_version = Int(0)

    def select(self, room: dict[str, Any] | None) -> None:
        """Make `room` the selected one (None: nothing selected)."""
        self.room = room


def on_click(button: widgets.Button, handler: Callable[[], object]) -> None:
    """Run `handler` on clicks, ignoring a disabled button's, as a browser would."""

    def clicked(_: widgets.Button) -> None:
        if not button.disabled:
            handler()

    button.on_click(clicked)


class Section(widgets.VBox):
    """A form: its widgets above a status line where each call's outcome appears."""

    def __init__(self, session: Session, children: list[widgets.Widget], **kwargs: Any) -> None:
        self.session = session
        self.status = widgets.HTML(value="")
        self.last_error: ApiError | None = None
        super().__init__(children=[*children, self.status], **kwargs)

    def call(
        self,
        label: str,
        action: Callable[[AppServerClient], T],
        *,
        show: bool = True,
        requires_client: bool = True,
    ) -> T | None:
        """Run one API call through the session's client; show its outcome, never a traceback.

        `show` puts the answer in the JSON view; background reloads pass False so they do not
        hide the answer the user just asked for. Errors are always shown. `requires_client` false
        lets an action that makes its own client (logging in) run without one.
        """
        client = self.session.client
        if client is None and requires_client:
            self.fail(f"{label}: log in first")
            return None
        try:
            result = action(client)
        except ApiError as exc:
            self.last_error = exc
            self.session.error = exc
            self.session.answer = exc.to_json()
            self.fail(f"{label}: {exc.status} {exc.message}")
            return None
        except ServerUnavailable as exc:  # one line already: stopped, or nothing ever answered there
            self.fail(f"{label}: {exc}")
            return None
        except httpx.HTTPError as exc:  # the URL is not one
            self.fail(f"{label}: no answer ({type(exc).__name__}: {exc})")
            return None
        except LookupError as exc:  # no URL given and no server started in this kernel
            self.fail(f"{label}: {exc}")
            return None
        self.last_error = None
        self.session.error = None
        if show:
            self.session.answer = result
        self.succeed(f"{label}: ok")
        return result

    def succeed(self, text: str) -> None:
        self.status.value = f"<span style='color:#1a7f37'>✓ {html.escape(text)}</span>"

    def fail(self, text: str) -> None:
        self.status.value = f"<span style='color:#cf222e'>✗ {html.escape(text)}</span>"

    @property
    def status_text(self) -> str:
        """The status line as plain text (for tests and logs)."""
        value = self.status.value
        return html.unescape(value[value.find(">") + 1 : value.rfind("<")]) if value else ""
