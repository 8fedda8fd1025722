"""What a workshop host needs in the panel: reset the class (rooms go, users stay)."""

from __future__ import annotations

import ipywidgets as widgets

from ._base import Section, Session, on_click

__all__ = ["ClassTools"]


class ClassTools(Section):
    """A "Reset the class" button: deletes every room of the kernel's server; logins stay valid."""

    def __init__(self, session: Session) -> None:
        self.reset_button = widgets.Button(
            description="Reset the class", icon="eraser", tooltip="delete every room; users stay logged in",
            layout=widgets.Layout(width="auto"),
        )  # fmt: skip
        on_click(self.reset_button, self.reset)
        super().__init__(session, [self.reset_button], layout=widgets.Layout(align_items="flex-start"))
        self.reset_button.disabled = not hasattr(session.server, "reset")

    def reset(self) -> None:
        """Clear the server's rooms (only a server running in this kernel can be reset from here)."""
        server = self.session.server
        if server is None or not hasattr(server, "reset"):
            self.fail("reset: only a server started in this kernel (start_server()) can be reset here")
            return
        try:
            count = server.reset()
        except RuntimeError as exc:  # stopped: the message says to start it again
            self.fail(f"reset: {exc}")
            return
        self.session.select(None)
        self.session.rooms_version += 1  # room lists reload
        self.succeed(f"reset: {count} room{'s' if count != 1 else ''} deleted; users stay logged in")
