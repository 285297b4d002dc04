"""The selected session up close: where it runs, how to resume it, what claude is doing."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static

from mpg_tui.core.api import ApprovalInfo, SessionInfo
from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.jump import session_workdir

PROGRESS_LINES = 12
"""Progress lines kept on screen; the core keeps the run's recent history."""


class SessionDetail(VerticalScroll):
    def __init__(self, *, claude: Sequence[str] = ("claude",), id: str | None = None) -> None:
        super().__init__(id=id)
        self.claude = tuple(claude)
        self.info: SessionInfo | None = None
        self.waiting: list[ApprovalInfo] = []
        self._reply: str | None = None
        self._shape: tuple[int | None, int | None] | None = None
        self._shown: tuple[SessionInfo, str, float] | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Select a session to see it here.", style=fmt.MUTED), id="detail-head")
        yield Static("", id="detail-progress")
        yield Static(Text("last reply", style=f"bold {fmt.MUTED}"), id="detail-reply-title")
        yield Markdown("", id="detail-reply")

    def show(
        self, info: SessionInfo | None, project_name: str, now: float, waiting: Sequence[ApprovalInfo] = ()
    ) -> None:
        """Show ``info``; ``waiting`` are the requests of this session that wait for a person."""
        self.info = info
        self.waiting = list(waiting)
        self.set_class(info is None, "-empty")
        head = self.query_one("#detail-head", Static)
        progress = self.query_one("#detail-progress", Static)
        if info is None:
            self._shape = None
            head.update(Text("Select a session to see it here.", style=fmt.MUTED))
            progress.update("")
            self._set_reply("")
            return
        # A layout of the screen costs more than the frame itself (tens of milliseconds with a
        # thousand sessions): pay it only when the height of what is shown changes, not on
        # every selection or progress line.
        self._shown = (info, project_name, now)
        head_height, head_lines = self._drawn(head, self._head(info, project_name, now, self.waiting))
        progress_lines = self._progress(info)
        shape = (head_height, self._height(progress, progress_lines))
        layout = shape != self._shape or None in shape
        self._shape = shape
        head.update(head_lines, layout=layout)
        progress.update(progress_lines, layout=layout)
        reply = info.last_reply or (f"**Error:** {info.last_error}" if info.last_error else "")
        self._set_reply(reply)

    def on_resize(self) -> None:
        # The head is drawn for a width (below): a new width draws it again.
        if self._shown is not None and self._shown[0] is self.info:
            self.show(*self._shown, self.waiting)

    def _drawn(self, static: Static, grid: Table) -> tuple[int | None, Table | Text]:
        """``grid`` drawn for ``static``'s width as styled text, and its height (None: not laid out yet).

        Measuring the grid (for the layout decision above) already draws it; the frame then
        drew it again (~5 ms a selection). The lines drawn here are shown as they are.
        """
        width = static.content_region.width
        if width <= 0:
            return None, grid
        console = self.app.console
        lines = console.render_lines(grid, console.options.update_width(width), pad=False)
        text = Text("\n").join(
            Text.assemble(*((seg.text, seg.style or "") for seg in line if not seg.control)) for line in lines
        )
        text.no_wrap = True
        text.overflow = "crop"
        return len(lines), text

    def _height(self, static: Static, renderable: Table | Text) -> int | None:
        """How many lines ``renderable`` takes in ``static`` at its current width (None: not laid out yet)."""
        width = static.content_region.width
        if width <= 0:
            return None
        options = self.app.console.options.update_width(width)
        return len(self.app.console.render_lines(renderable, options, pad=False))

    def _set_reply(self, reply: str) -> None:
        # Markdown re-parses on every update; only do it when the reply really changed.
        if reply != self._reply:
            self._reply = reply
            self.query_one("#detail-reply-title").display = bool(reply)
            self.query_one("#detail-reply", Markdown).update(reply)

    def _head(self, info: SessionInfo, project_name: str, now: float, waiting: Sequence[ApprovalInfo]) -> Table:
        state = fmt.state_text(info.state)
        if info.state == "running" and info.run_started_at is not None:
            state.append(f" for {fmt.duration(now - info.run_started_at)}", style=fmt.IDLE)
        if info.queue_depth:
            state.append(f" · {info.queue_depth} waiting", style=fmt.QUEUED)
        runner = Text(info.runner, style=fmt.TEXT)
        if info.tmux_session:
            runner.append(f" · tmux session {info.tmux_session}", style=fmt.MUTED)
        spend = Text(
            f"{info.runs} run{'s' * (info.runs != 1)} · {fmt.cost(info.cost_usd)} · "
            f"{fmt.tokens(info.input_tokens)} in / {fmt.tokens(info.output_tokens)} out",
            style=fmt.TEXT,
        )
        workdir = session_workdir(info)
        if info.session_id:
            resume = Text(fmt.command_line([*self.claude, "--resume", info.session_id], workdir), style=fmt.ACCENT)
        else:
            resume = Text("no claude session yet: nothing to resume", style=fmt.MUTED)

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style=fmt.MUTED, no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row("session", Text(info.key, style=f"bold {fmt.TEXT}"))
        grid.add_row("state", state)
        agent = Text(info.agent, style=fmt.ACCENT) if info.agent else Text("default session", style=fmt.MUTED)
        grid.add_row("project", Text.assemble((project_name, fmt.TEXT), ("  agent ", fmt.MUTED), agent))
        grid.add_row("runner", runner)
        grid.add_row("cwd", Text(fmt.home_relative(workdir), style=fmt.TEXT))
        grid.add_row("resume", resume)
        if info.held_since is not None:
            held = f"open in a terminal ({info.held_by or 'unknown'}) for {fmt.duration(now - info.held_since)}"
            grid.add_row("held", Text(held + "; messages wait", style=fmt.ACCENT))
        for request in waiting:
            grid.add_row("waits for", self._waiting(request, now))
        grid.add_row("spent", spend)
        if info.last_error:
            grid.add_row("error", Text(info.last_error, style=fmt.ERROR))
        return grid

    @staticmethod
    def _waiting(request: ApprovalInfo, now: float) -> Text:
        """A request waiting for a person: what, for how long, and the keys that decide it."""
        what = (
            "an answer" if request.kind == "question" else "a plan approval" if request.kind == "plan" else "approval"
        )
        text = Text(f"{what}: ", style=f"bold {fmt.QUEUED}")
        if request.kind == "tool":
            text.append(f"{request.tool} ", style=f"bold {fmt.TEXT}")
        text.append(fmt.truncate(" ".join(request.summary.split()), 120), style=fmt.TEXT)
        text.append(f" · waiting {fmt.duration(max(0.0, now - request.created_at))}", style=fmt.IDLE)
        if request.options:
            choices = " · ".join(f"{n + 1} {label}" for n, label in enumerate(request.options))
            text.append(f"\ni, then {choices}", style=fmt.ACCENT)
        else:
            text.append("\ni, then a allow · s allow for the session · d deny", style=fmt.ACCENT)
        return text

    @staticmethod
    def _progress(info: SessionInfo) -> Text:
        lines = info.progress[-PROGRESS_LINES:]
        if not lines:
            return Text("")
        text = Text()
        title = "progress" if info.state == "running" else "last run"
        text.append(f"{title}\n", style=f"bold {fmt.MUTED}")
        for index, line in enumerate(lines):
            newest = index == len(lines) - 1 and info.state == "running"
            text.append("▸ " if newest else "· ", style=fmt.RUNNING if newest else fmt.MUTED)
            text.append(fmt.truncate(line, 400), style=fmt.TEXT if newest else fmt.IDLE)
            if index < len(lines) - 1:
                text.append("\n")
        return text
