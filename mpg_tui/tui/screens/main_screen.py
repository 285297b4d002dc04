"""The cockpit's main screen: the panes, what is selected, and how a batch of events lands.

The app hands this screen digested batches of core events (:meth:`MainScreen.apply`);
the screen re-reads the touched sessions from the :class:`~mpg_tui.core.api.CoreAPI`
(read-only) and tells each pane what changed. Selection flows through the panes'
messages: a project selects its threads, a thread selects one of its sessions, a session
shows its detail, its thread's conversation and its thread's handoff chain.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import UPDATE_PERIOD, Screen
from textual.timer import Timer
from textual.widgets import Footer, Input

from mpg_tui.core.api import ApprovalInfo, CoreAPI, HandoffChain, SessionInfo, ThreadCounts
from mpg_tui.core.clock import Clock, TimerHandle
from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.digest import Digest, Level, LogEntry
from mpg_tui.tui.frame_timer import FrameTimer
from mpg_tui.tui.model import (
    STATE_RANK,
    ThreadSummary,
    project_counts,
    project_facts,
    stored_thread_names,
    summarize_threads,
)
from mpg_tui.tui.widgets.chain_pane import ChainPane
from mpg_tui.tui.widgets.chat_box import ChatBox
from mpg_tui.tui.widgets.cockpit_header import CockpitHeader
from mpg_tui.tui.widgets.conversation_view import ConversationView
from mpg_tui.tui.widgets.event_log import EventLog
from mpg_tui.tui.widgets.filter_bar import FilterBar
from mpg_tui.tui.widgets.projects_pane import ProjectsPane
from mpg_tui.tui.widgets.session_detail import SessionDetail
from mpg_tui.tui.widgets.sessions_table import SessionsTable
from mpg_tui.tui.widgets.threads_pane import ThreadsPane

TICK_S = 1.0
"""How often relative times, uptime and running durations are brought up to date."""
LOG_WRITE_S = 0.5
"""The shortest time between two writes to the event log (each repaints it)."""
CONVERSATION_REST_S = 0.25
"""How long the session cursor rests on a thread before its conversation is read and shown."""


class MainScreen(Screen[None]):
    AUTO_FOCUS = "#sessions"

    class Ready(Message):
        """The panes exist and show the core's first snapshot: events can be applied."""

    class Tick(Message):
        """A second of the cockpit's clock has passed: relative times move on."""

    class ConversationDue(Message):
        """The session cursor has rested on a new thread: read its conversation."""

    def __init__(
        self,
        core: CoreAPI,
        clock: Clock,
        *,
        dashboard_url: str | None = None,
        demo_channel_ids: Sequence[tuple[str, str]] | None = None,
        claude_command: Sequence[str] = ("claude",),
        attached_to: str | None = None,
    ) -> None:
        super().__init__()
        self.attached_to = attached_to
        self.core = core
        self.clock = clock
        self.projects = list(core.projects())
        self.project_names = {p.key: p.name for p in self.projects}
        self.sessions: dict[str, SessionInfo] = {}
        self.thread_names: dict[str, str] = {}
        self.selected_project: str | None = self.projects[0].key if self.projects else None
        self.selected_thread: str | None = None
        self.selected_key: str | None = None
        self.approvals: list[ApprovalInfo] = []
        """Requests waiting for a person, oldest first (re-read when a batch says they changed)."""
        self._dashboard_url = dashboard_url
        self._demo_channels = list(demo_channel_ids or [])
        self._claude = tuple(claude_command)
        self._tick_timer: TimerHandle | None = None
        self._log_written = float("-inf")
        self._conversation_timer: TimerHandle | None = None
        self._conversation_now = False
        self._message_counts: Mapping[str, ThreadCounts] | None = None
        self._counts_read_at = float("-inf")
        self._frame_timer: FrameTimer | None = None

    @property
    def _update_timer(self) -> Timer:
        """The timer that draws the screen: see :mod:`mpg_tui.tui.frame_timer`."""
        if self._frame_timer is None:
            timer = FrameTimer(self, UPDATE_PERIOD, name="screen_update", callback=self._on_timer_update, pause=True)
            timer._start()
            self._timers.add(timer)
            self._frame_timer = timer
        return self._frame_timer

    # -- layout ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield CockpitHeader(self.core.version, self._dashboard_url, attached_to=self.attached_to, id="header")
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield ProjectsPane(self.projects, id="projects")
                yield ThreadsPane(id="threads")
            with Vertical(id="main"):
                yield SessionsTable(self.project_names, id="sessions")
                with Horizontal(id="lower"):
                    yield SessionDetail(claude=self._claude, id="detail")
                    yield ConversationView(id="conversation")
                    yield ChainPane(id="chain")
        yield EventLog(id="event-log")
        yield FilterBar(id="filter")
        if self._demo_channels:
            yield ChatBox(self._demo_channels, id="chat")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#projects").border_title = "Projects"
        self.query_one("#threads").border_title = "Threads"
        self.query_one("#detail").border_title = "Session"
        self.query_one("#chain").border_title = "Handoff chain"
        self.query_one("#conversation").border_title = "Conversation"
        self.query_one("#filter").border_title = "Filter sessions"
        self.query_one("#filter").display = False
        now = self.clock.now()
        self.sessions = {s.key: s for s in self.core.sessions()}
        self.thread_names.update(stored_thread_names(self.sessions.values(), self.thread_names))
        self.table.thread_names.update(self.thread_names)
        self.header.connection = self.core.connection_state
        self.header.totals = self.core.totals()
        self.header.budgets = self._budget_facts()
        self.approvals = self.core.approvals()
        self.header.approvals = len(self.approvals)
        self.header.uptime = now - self.core.started_at
        self.table.load(self.sessions.values(), now)
        self._refresh_counts()
        self._refresh_threads(now)
        if self.selected_project is not None:
            self.query_one(ProjectsPane).select_project(self.selected_project)
        self._show_detail(now)
        self._show_chain(now)
        self.load_conversation()
        self._schedule_tick()
        # In the demo a newcomer types a message first; keys must not be taken as commands.
        self.call_after_refresh(self.focus_chat)
        self.post_message(self.Ready())

    # -- shortcuts to the panes ---------------------------------------------------------

    @property
    def header(self) -> CockpitHeader:
        return self.query_one(CockpitHeader)

    @property
    def table(self) -> SessionsTable:
        return self.query_one(SessionsTable)

    @property
    def event_log(self) -> EventLog:
        return self.query_one(EventLog)

    @property
    def selected_session(self) -> SessionInfo | None:
        return self.sessions.get(self.selected_key) if self.selected_key else None

    @property
    def session_under_cursor(self) -> SessionInfo | None:
        """What a command acts on: the row under the cursor at this moment.

        Keys typed in a burst ("down down k") reach the app before the cursor's
        highlight messages do; a kill must hit the row the operator sees selected.
        """
        key = self.table.key_at_cursor()
        return self.sessions.get(key) if key else None

    # -- what the app calls --------------------------------------------------------------

    def apply(self, batch: Digest) -> None:
        """Bring every pane up to date with one batch of events."""
        now = self.clock.now()
        self._refresh_projects()
        if batch.thread_names:
            self.thread_names.update(batch.thread_names)
            self.table.name_threads(batch.thread_names)
        changed: list[SessionInfo] = []
        removed: list[str] = []
        for key in batch.session_keys:
            info = self.core.session(key)
            if info is None:
                if self.sessions.pop(key, None) is not None:
                    removed.append(key)
            else:
                self.sessions[key] = info
                changed.append(info)
        # Sessions taken up from disk bring the names of threads opened before a restart.
        stored_names = stored_thread_names(changed, self.thread_names)
        if stored_names:
            self.thread_names.update(stored_names)
            self.table.thread_names.update(stored_names)
        if changed or removed:
            self.table.apply(changed, removed, now)
            self._refresh_counts()
        if changed or removed or batch.thread_names:
            self._refresh_threads(now)
        if batch.connection is not None:
            self.header.connection, self.header.connection_detail = batch.connection
        if batch.totals:
            self.header.totals = self.core.totals()
            self.header.budgets = self._budget_facts()
        if batch.budgets:
            self._refresh_threads(now)
        if batch.approvals:
            self.approvals = self.core.approvals()
            self.header.approvals = len(self.approvals)
        if self.selected_key in batch.session_keys or batch.approvals:
            self._show_detail(now)
        if self.selected_thread in batch.threads or self.selected_thread in {s.thread_id for s in changed}:
            self._show_chain(now)
        if batch.log:
            self.event_log.add(batch.log, defer=True)
        if self.clock.monotonic() - self._log_written >= LOG_WRITE_S:
            self._write_log()

    def conversation_changed(self, threads: Collection[str]) -> None:
        """Something was said in ``threads``: re-read the selected thread's conversation if among them."""
        if self.selected_thread is not None and self.selected_thread in threads:
            self.load_conversation()

    def load_conversation(self) -> None:
        """Read the selected thread's conversation from the core (through the control API when attached)."""
        self.run_worker(
            self._fetch_conversation(self.selected_thread),
            name="conversation",
            group="conversation",
            exclusive=True,
            exit_on_error=False,
        )

    def _load_conversation_when_resting(self) -> None:
        """Read the conversation once the cursor rests, not for every row it passes.

        Rewriting the conversation lays the whole screen out again, which under a held-down
        arrow key made every row the cursor crossed cost a layout.
        """
        if self._conversation_timer is not None:
            self._conversation_timer.cancel()
        self._conversation_timer = self.clock.call_later(
            CONVERSATION_REST_S, lambda: self.post_message(self.ConversationDue())
        )

    @on(ConversationDue)
    def _conversation_due(self) -> None:
        self._conversation_timer = None
        self.load_conversation()

    async def _fetch_conversation(self, thread_id: str | None) -> None:
        entries = await self.core.conversation(thread_id) if thread_id else []
        if thread_id != self.selected_thread:
            return  # the operator moved on meanwhile
        view = self.query_one(ConversationView)
        name = self.thread_names.get(thread_id or "", "")
        view.border_title = f"Conversation · {fmt.truncate(name, 30)}" if name else "Conversation"
        view.show(thread_id, entries)

    def toggle_conversation(self) -> None:
        view = self.query_one(ConversationView)
        view.display = not view.display

    def _write_log(self) -> None:
        self._log_written = self.clock.monotonic()
        self.event_log.write_pending()

    def log_entry(self, level: Level, text: str) -> None:
        """Add the cockpit's own news (command results, worker failures) to the event log."""
        self.event_log.add([LogEntry(at=self.clock.now(), level=level, text=text)])

    def _schedule_tick(self) -> None:
        # On the injected clock, not a Textual timer: under a fake clock the times on screen
        # move only when the clock does, so no picture depends on how fast the machine is.
        self._tick_timer = self.clock.call_later(TICK_S, lambda: self.post_message(self.Tick()))

    @on(Tick)
    def _tick_due(self) -> None:
        self.tick()
        if self.is_attached:
            self._schedule_tick()

    def on_unmount(self) -> None:
        if self._conversation_timer is not None:
            self._conversation_timer.cancel()
            self._conversation_timer = None
        if self._tick_timer is not None:
            self._tick_timer.cancel()
            self._tick_timer = None

    def tick(self) -> None:
        """Once a second: uptime, relative times and running durations move on."""
        now = self.clock.now()
        self._write_log()
        self._refresh_projects()
        self.header.uptime = now - self.core.started_at
        self.table.refresh_times(now)
        self._refresh_threads(now)
        info = self.selected_session
        if info is not None and (info.state == "running" or self.waiting_for(info.key)):
            self._show_detail(now)
        chain = self.query_one(ChainPane).chain
        if chain is not None and chain.state == "running":
            self._show_chain(now)

    def select_session(self, key: str) -> bool:
        """Put the cursor on ``key``, clearing a filter that hides it; False if it is unknown.

        A session picked by name (the command palette, a script) shows its thread's
        conversation at once; only the moving cursor waits for it to rest.
        """
        self._conversation_now = key != self.table.selected_key
        if self.table.select_key(key):
            return True
        if key not in self.sessions or not self.table.filter_query:
            return False
        bar = self.query_one(FilterBar)
        with bar.prevent(Input.Changed):
            bar.value = ""
        bar.display = False
        self.table.set_filter("")
        self._refresh_counts()
        return self.table.select_key(key)

    def toggle_log(self) -> None:
        log = self.event_log
        log.display = not log.display

    def open_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.display = True
        bar.focus()

    @on(ChatBox.Left)
    def _chat_left(self) -> None:
        self.table.focus()

    def focus_chat(self) -> bool:
        boxes = self.query(ChatBox)
        if not boxes:
            return False
        boxes.first().focus_input()
        return True

    # -- selection ---------------------------------------------------------------------

    @on(ProjectsPane.Selected)
    def _project_selected(self, message: ProjectsPane.Selected) -> None:
        if message.project_key == self.selected_project:
            return
        self.selected_project = message.project_key
        threads = self._threads_of_selected_project()
        if self.selected_thread not in {t.thread_id for t in threads}:
            self._select_thread(threads[0].thread_id if threads else None)
        self._refresh_threads(self.clock.now())

    @on(ThreadsPane.Selected)
    def _thread_selected(self, message: ThreadsPane.Selected) -> None:
        self._select_thread(message.thread_id)

    def _select_thread(self, thread_id: str | None) -> None:
        """Show the thread's chain and put the cursor on its most interesting session."""
        if thread_id != self.selected_thread:
            self.selected_thread = thread_id
            self.load_conversation()
        self._show_chain(self.clock.now())
        current = self.selected_session
        if thread_id is None or (current is not None and current.thread_id == thread_id):
            return
        members = [s for s in self.sessions.values() if s.thread_id == thread_id]
        # The busiest, then the most recent, session of the thread is the interesting one.
        for info in sorted(members, key=lambda s: (STATE_RANK.get(s.state, 0), s.last_activity), reverse=True):
            if self.table.select_key(info.key):
                return

    @on(SessionsTable.Selected)
    def _session_selected(self, message: SessionsTable.Selected) -> None:
        """The cursor is the source of truth: project, thread and chain follow the session."""
        now = self.clock.now()
        self.selected_key = message.key
        self._show_detail(now)
        info = self.selected_session
        if info is None:
            return
        if info.thread_id != self.selected_thread:
            self.selected_thread = info.thread_id
            self._show_chain(now)
            if self._conversation_now:
                self.load_conversation()
            else:
                self._load_conversation_when_resting()
        self._conversation_now = False
        if info.project_key != self.selected_project:
            self.selected_project = info.project_key
            self.query_one(ProjectsPane).select_project(info.project_key)
            self._refresh_threads(now)
        else:
            self.query_one(ThreadsPane).highlight_thread(info.thread_id)

    @on(FilterBar.QueryChanged)
    def _filter_changed(self, message: FilterBar.QueryChanged) -> None:
        self.table.set_filter(message.query)
        self._refresh_counts()

    @on(FilterBar.Done)
    def _filter_done(self) -> None:
        bar = self.query_one(FilterBar)
        if not bar.value.strip():
            bar.display = False
        self.table.focus()

    # -- pane refreshers ------------------------------------------------------------------

    def _refresh_projects(self) -> None:
        """Follow a reload of the gateway's config: projects added, removed or changed."""
        projects = list(self.core.projects())
        if [project_facts(p) for p in projects] == [project_facts(p) for p in self.projects]:
            return
        self.projects = projects
        self.project_names = {p.key: p.name for p in projects}
        self.table.project_names = dict(self.project_names)
        pane = self.query_one(ProjectsPane)
        pane.set_projects(projects, project_counts(self.sessions.values()))
        if self.selected_project not in self.project_names:
            self.selected_project = projects[0].key if projects else None
            self._refresh_threads(self.clock.now())
        if self.selected_project is not None:
            pane.select_project(self.selected_project)

    def _refresh_counts(self) -> None:
        sessions = self.sessions.values()
        self.query_one(ProjectsPane).update_counts(project_counts(sessions))
        running = sum(1 for s in sessions if s.state == "running")
        waiting = sum(s.queue_depth + (s.state == "queued") for s in sessions)
        table = self.table
        title = f"Sessions · {len(self.sessions)}"
        if table.filter_query:
            matches = f"{table.row_count} match{'es' * (table.row_count != 1)}"
            title += f" · {matches} “{fmt.truncate(table.filter_query, 30)}”"
        subtitle = f"{running} running · {waiting} queued"
        # Setting a border title repaints the whole table, even to the same text.
        if table.border_title != title:
            table.border_title = title
        if table.border_subtitle != subtitle:
            table.border_subtitle = subtitle

    def _threads_of_selected_project(self, paused: Mapping[str, str] | None = None) -> list[ThreadSummary]:
        return summarize_threads(
            self.sessions.values(), self.selected_project, self.thread_names, self._counts(), paused
        )

    def _counts(self) -> Mapping[str, ThreadCounts]:
        """The journal's message counts, read at most once per tick.

        In the gateway's process they are a query over the whole message journal: read for
        every batch of events, that was most of the time the cockpit spent applying one.
        """
        now = self.clock.monotonic()
        if self._message_counts is None or now - self._counts_read_at >= TICK_S:
            self._message_counts = self.core.message_counts()
            self._counts_read_at = now
        return self._message_counts

    def _budget_facts(self) -> tuple[tuple[str, float, float | None], ...]:
        """(project name, spent today, today's budget) for each project with a budget or spend today."""
        spends = self.core.budgets().projects
        return tuple(
            (self.project_names.get(p.project_key, p.project_key), p.spent_usd, p.budget_usd)
            for p in spends
            if p.budget_usd is not None
        )

    def _refresh_threads(self, now: float) -> None:
        pane = self.query_one(ThreadsPane)
        name = self.project_names.get(self.selected_project or "", "")
        pane.border_title = f"Threads · {name}" if name else "Threads"
        paused = {p.thread_id: p.limit for p in self.core.budgets().paused}
        pane.show(self._threads_of_selected_project(paused), now, self.selected_thread)

    def _show_detail(self, now: float) -> None:
        info = self.selected_session
        detail = self.query_one(SessionDetail)
        detail.border_title = f"Session · {info.key}" if info else "Session"
        project = self.project_names.get(info.project_key, info.project_key) if info else ""
        detail.show(info, project, now, self.waiting_for(info.key) if info else [])

    def waiting_for(self, key: str) -> list[ApprovalInfo]:
        """The requests of session ``key`` waiting for a person."""
        return [a for a in self.approvals if a.key == key]

    def _show_chain(self, now: float) -> None:
        pane = self.query_one(ChainPane)
        thread = self.selected_thread
        chain = self._chain_for(thread) if thread else None
        name = self.thread_names.get(thread or "", "")
        pane.border_title = f"Handoff chain · {fmt.truncate(name, 24)}" if name else "Handoff chain"
        pane.show(thread, chain, now)

    def _chain_for(self, thread_id: str) -> HandoffChain | None:
        chains: Iterable[HandoffChain] = self.core.chains()
        found = [c for c in chains if c.thread_id == thread_id]
        return found[-1] if found else None
