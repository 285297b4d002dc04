"""Which project a chat message belongs to.

A message in a mapped channel belongs to that channel's project; a message in a thread
belongs to the project of the thread's parent channel (MPG's rule: the channel itself is
looked up first, then its parent). Anything else is not ours and is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpg_tui.config import GatewayConfig, ProjectView
from mpg_tui.core.ports import InboundMessage


@dataclass(frozen=True)
class Route:
    project: ProjectView
    channel_id: str
    """Where the message was posted (the thread, when it was posted in one)."""
    thread_id: str | None
    """The thread the message was posted in; None for a project's main channel."""

    @property
    def in_thread(self) -> bool:
        return self.thread_id is not None


class Router:
    def __init__(self, config: GatewayConfig) -> None:
        self._views: dict[str, ProjectView] = {}
        self.reload(config)

    def reload(self, config: GatewayConfig) -> None:
        """Use a new config from now on (messages already routed keep their project)."""
        self._views = {view.key: view for view in config.views()}

    def route(self, message: InboundMessage) -> Route | None:
        return self.route_channel(message.channel_id, message.parent_channel_id)

    def route_channel(self, channel_id: str, parent_channel_id: str | None = None) -> Route | None:
        """Route by ids alone: ``parent_channel_id`` is set when ``channel_id`` is a thread."""
        project = self._views.get(channel_id)
        if project is None and parent_channel_id is not None:
            project = self._views.get(parent_channel_id)
        if project is None:
            return None
        thread_id = channel_id if parent_channel_id is not None else None
        return Route(project=project, channel_id=channel_id, thread_id=thread_id)

    def project(self, key: str) -> ProjectView | None:
        return self._views.get(key)

    def projects(self) -> list[ProjectView]:
        return list(self._views.values())

    def find_project(self, name: str) -> ProjectView | None:
        """A project by channel ID, or by display name (case-insensitive)."""
        wanted = name.strip()
        if wanted in self._views:
            return self._views[wanted]
        lowered = wanted.lower()
        return next((v for v in self._views.values() if v.name.lower() == lowered), None)
