"""Messages the cockpit app sends itself about the core.

Widget-to-screen messages live inside the widget that sends them (``SessionsTable.Selected``);
these two carry core events into the app's own message queue, which is safe to post to
from any thread.
"""

from __future__ import annotations

from textual.message import Message

from mpg_tui.core.events import Event


class CoreEvent(Message, bubble=False):
    """One event from the core's bus, on its way into the app's pending batch."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class FlushEvents(Message, bubble=False):
    """Time to apply the pending batch of core events to the panes."""

    def can_replace(self, message: Message) -> bool:
        # Two flushes in a row do the work of one: the second would find nothing pending.
        return isinstance(message, FlushEvents)
