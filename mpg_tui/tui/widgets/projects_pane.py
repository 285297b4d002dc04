"""The configured projects, each with its channel, directory, agents and live counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mpg_tui.config import ProjectView
from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.model import ProjectCounts


class ProjectsPane(OptionList):
    @dataclass
    class Selected(Message):
        project_key: str

    def __init__(self, projects: Sequence[ProjectView], *, id: str | None = None) -> None:
        self.projects = {p.key: p for p in projects}
        self._counts: dict[str, ProjectCounts] = {}
        super().__init__(*self._project_options(projects), id=id)

    def set_projects(self, projects: Sequence[ProjectView], counts: Mapping[str, ProjectCounts]) -> None:
        """List ``projects`` instead (the gateway's config was reloaded), without announcing a selection."""
        self.projects = {p.key: p for p in projects}
        self._counts = dict(counts)
        with self.prevent(OptionList.OptionHighlighted):
            self.set_options(self._project_options(projects, counts))

    def _project_options(
        self, projects: Sequence[ProjectView], counts: Mapping[str, ProjectCounts] | None = None
    ) -> list[Option | None]:
        options: list[Option | None] = []
        for project in projects:
            if options:
                options.append(None)  # a separator line between projects
            options.append(
                Option(self._prompt(project, (counts or {}).get(project.key, ProjectCounts())), id=project.key)
            )
        return options or [Option(Text("No projects configured", style=fmt.MUTED), disabled=True)]

    @property
    def selected_key(self) -> str | None:
        if self.highlighted is None:
            return None
        return self.get_option_at_index(self.highlighted).id

    def select_project(self, project_key: str) -> None:
        """Highlight ``project_key`` without announcing it (the caller already knows)."""
        with self.prevent(OptionList.OptionHighlighted):
            self.highlighted = self.get_option_index(project_key) if project_key in self.projects else None

    def update_counts(self, counts: Mapping[str, ProjectCounts]) -> None:
        """Redraw the projects whose counts changed."""
        for key, project in self.projects.items():
            new = counts.get(key, ProjectCounts())
            if self._counts.get(key, ProjectCounts()) != new:
                self._counts[key] = new
                self.replace_option_prompt(key, self._prompt(project, new))

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Selected(event.option.id))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()

    @staticmethod
    def _prompt(project: ProjectView, counts: ProjectCounts) -> RenderableType:
        busy = Text(justify="right", no_wrap=True, overflow="ellipsis")
        if counts.running:
            busy.append(f"● {counts.running} running", style=fmt.RUNNING)
        if counts.queued:
            busy.append("  " if counts.running else "")
            busy.append(f"◔ {counts.queued} queued", style=fmt.QUEUED)
        if not busy:
            sessions = f"{counts.sessions} session{'s' * (counts.sessions != 1)}" if counts.sessions else "idle"
            busy.append(sessions, style=fmt.MUTED)
        title = Table.grid(expand=True, padding=(0, 1, 0, 0))
        # The name keeps its room; the counts give way (ellipsis) in a narrow sidebar.
        title.add_column(no_wrap=True, overflow="ellipsis", min_width=min(len(project.name), 20))
        title.add_column(justify="right", no_wrap=True, overflow="ellipsis", ratio=1)
        title.add_row(Text(project.name, style=f"bold {fmt.TEXT}"), busy)

        details = Text(no_wrap=True, overflow="ellipsis")
        details.append(f"{fmt.home_relative(project.directory)}\n", style=fmt.IDLE)
        details.append(f"#{project.channel_id}", style=fmt.MUTED)
        details.append("  ")
        details.append(
            ", ".join(project.agents) if project.agents else "no agents",
            style=fmt.ACCENT if project.agents else fmt.MUTED,
        )
        if project.persistence == "tmux":
            details.append(" · tmux", style=fmt.MUTED)
        return Group(title, details)
