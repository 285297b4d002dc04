"""The cockpit app: runs the gateway as a worker, batches its events, and runs the commands.

Core events arrive through ``core.bus.listen`` and are posted to the app's own message
queue (safe from any thread). They are applied in batches, at most one batch per
``refresh_interval``: a burst of a few hundred events costs one redraw of each pane, not
hundreds. Commands (kill, restart, post) and hand-overs to claude or tmux run as workers;
one ``Worker.StateChanged`` handler reports every worker's outcome, so a failing gateway
shows up in the header and the log while the cockpit stays up. Jumping into a session
holds it in the gateway for as long as the terminal's claude runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from mpg_tui.core.api import CoreAPI, HoldError, IfRunning, SessionInfo, keep_hold
from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.core.events import Event
from mpg_tui.tui import formatting as fmt
from mpg_tui.tui.commands import SessionsProvider
from mpg_tui.tui.digest import LEVELS, digest
from mpg_tui.tui.jump import (
    Handover,
    Launcher,
    PaneLauncher,
    attach_handover,
    held_handover,
    holder_name,
    jump_refusal,
    open_pane,
    process_gone,
    run_process,
)
from mpg_tui.tui.messages import CoreEvent, FlushEvents
from mpg_tui.tui.model import command_outcome, conversation_threads, direct_runs_in_progress
from mpg_tui.tui.screens.approvals_screen import ApprovalsScreen
from mpg_tui.tui.screens.busy_screen import BusyScreen
from mpg_tui.tui.screens.confirm_screen import ConfirmScreen
from mpg_tui.tui.screens.main_screen import MainScreen
from mpg_tui.tui.widgets.chat_box import ChatBox
from mpg_tui.tui.widgets.sessions_table import SessionsTable

log = logging.getLogger(__name__)

FULL_COLLECTION_AFTER = 10
"""Young collections after which a full one is due (CPython's own default pacing)."""
FULL_COLLECTION_LATEST = 1000
"""... and after which one happens even while keys are pressed."""
QUIET_S = 2.0
"""How long after the last keypress the cockpit counts as quiet (for a full collection)."""

CORE_WORKER = "gateway"
COMMAND_GROUP = "command"
HANDOVER_GROUP = "handover"
# Actions that act on the main screen; inside a modal they are off (and off the footer).
MAIN_SCREEN_ACTIONS = frozenset(
    {"kill", "restart", "stop", "jump", "attach", "filter", "toggle_log", "toggle_conversation", "chat", "approvals"}
)


class CockpitApp(App[None]):
    # Absolute, so subclasses defined elsewhere (tests, the screenshots script) find it.
    CSS_PATH = Path(__file__).with_name("cockpit.tcss")
    TITLE = "mpg-tui"
    COMMANDS = App.COMMANDS | {SessionsProvider}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (160, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "kill", "Kill"),
        Binding("r", "restart", "Restart"),
        # Not in the footer (it is full); listed in the README and the command palette.
        Binding("s", "stop", "Stop turn", show=False),
        Binding("j", "jump", "Jump in"),
        Binding("a", "attach", "Attach"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("l", "toggle_log", "Log"),
        Binding("v", "toggle_conversation", "Conversation"),
        Binding("c", "chat", "Chat"),
        Binding("i", "approvals", "Approvals"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        core: CoreAPI,
        *,
        run_core: Callable[[], Awaitable[None]] | None = None,
        dashboard_url: str | None = None,
        demo_channel_ids: list[tuple[str, str]] | None = None,
        clock: Clock | None = None,
        launcher: Launcher | None = None,
        pane_launcher: PaneLauncher | None = None,
        environ: Mapping[str, str] | None = None,
        claude_command: Sequence[str] = ("claude",),
        which: Callable[[str], str | None] = shutil.which,
        refresh_interval: float = 0.1,
        attached_to: str | None = None,
        elsewhere: Callable[[str], tuple[str, str] | None] | None = None,
        freeze_heap: bool = True,
    ) -> None:
        """
        Args:
            core: the gateway's read-and-command API.
            run_core: runs the Discord client and gateway until they stop; run as a worker.
            dashboard_url: shown in the header when the HTTP dashboard is up.
            demo_channel_ids: (channel_id, label) pairs: shows a chat box posting to them.
            clock: time for uptime, relative times and the refresh throttle.
            launcher: starts claude/tmux for jump and attach (tests record instead).
            pane_launcher: opens a tmux window for jump inside tmux and returns its pane's PID.
            environ: where ``$TMUX`` is looked up (defaults to ``os.environ``).
            claude_command: the claude executable and any fixed leading arguments.
            which: finds an executable on PATH (tests pretend claude is installed).
            refresh_interval: the shortest time between two batches of events applied.
            attached_to: names the gateway when ``core`` is a view of one in another process
                (quitting then stops nothing but the cockpit).
            elsewhere: for a session whose gateway runs on another machine, that machine's
                host and the gateway's own key for it (jump and attach say what to run there).
            freeze_heap: once the panes show the first snapshot, exempt every object alive then
                from the garbage collector's scans until the app exits (see :meth:`_freeze_heap`).
        """
        super().__init__()
        self.core = core
        self.clock: Clock = clock or SystemClock()
        self.demo_channel_ids = list(demo_channel_ids or [])
        self.launcher: Launcher = launcher or run_process
        self.pane_launcher: PaneLauncher = pane_launcher or open_pane
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.claude_command = tuple(claude_command)
        self.which = which
        self.refresh_interval = refresh_interval
        self._run_core = run_core
        self.attached_to = attached_to
        self.elsewhere = elsewhere
        self._pending: list[Event] = []
        self._flush_scheduled = False
        self._panes_ready = False
        self._last_flush = float("-inf")
        self._stop_listening: Callable[[], None] | None = None
        self._freeze_heap = freeze_heap
        self.heap_frozen = False
        """Whether the objects of the first snapshot are out of the garbage collector's scans."""
        self._thresholds = gc.get_threshold()
        self._last_key = float("-inf")
        self.quiet_collections = 0
        """Full garbage collections run while no key was pressed (tests read it)."""
        self.ready = asyncio.Event()
        """Set once the panes show the core's first snapshot (scripts wait for it)."""
        self.batches_applied = 0
        """How many batches of events reached the panes (tests and benchmarks read it)."""
        self.main = MainScreen(
            core,
            self.clock,
            dashboard_url=dashboard_url,
            demo_channel_ids=self.demo_channel_ids,
            claude_command=self.claude_command,
            attached_to=attached_to,
        )

    def get_default_screen(self) -> Screen[None]:
        return self.main

    # -- lifecycle ---------------------------------------------------------------------

    def on_load(self) -> None:
        # Listen before the main screen reads its first snapshot, so nothing falls between.
        self._stop_listening = self.core.bus.listen(self._forward_core_event)

    def on_mount(self) -> None:
        self.theme = "nord"

    @on(MainScreen.Ready)
    def _main_screen_ready(self) -> None:
        # Only now can events be applied and gateway failures shown: start the gateway.
        self._panes_ready = True
        self.ready.set()
        if self._freeze_heap:
            self._freeze()
        if self._pending:
            self.post_message(FlushEvents())
        if self._run_core is not None:
            self.run_worker(self._run_core(), name=CORE_WORKER, group="core", exit_on_error=False)

    def on_unmount(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if self.heap_frozen:
            gc.set_threshold(*self._thresholds)
            gc.unfreeze()
            self.heap_frozen = False

    def _freeze(self) -> None:
        """Keep the garbage collector's full collections off the objects of the first snapshot.

        With a thousand sessions the panes hold hundreds of thousands of objects (rows,
        options, styles, cached lines), and the gateway in this process as many again. Every
        full collection walked all of them: a stall of 150 to 500 ms at irregular times, the
        largest pauses between a keypress and the screen. Frozen, they are left out of every
        collection (they are still freed when nothing refers to them), so a full collection
        only walks what was made since. They are handed back to the collector when the app
        exits; until then a cycle among them that became garbage stays in memory, at most
        the size of the heap at start.

        What was made since still costs a full collection tens of milliseconds or more, and
        under load one came every second or two. They are now put off while the operator
        presses keys: the collector runs them only after 100 times as many young
        collections as it waits for by default, and the cockpit runs one itself at the next
        tick when it is due and no key was pressed for :data:`QUIET_S`.
        """
        gc.freeze()
        self._thresholds = gc.get_threshold()
        young, middle, _ = self._thresholds
        gc.set_threshold(young, middle, FULL_COLLECTION_LATEST)
        self.heap_frozen = True

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key = self.clock.monotonic()
        await super().on_event(event)

    @on(MainScreen.Tick)
    def _collect_when_quiet(self) -> None:
        """Run a due full collection now, while no key waits for the screen."""
        if not self.heap_frozen or self.clock.monotonic() - self._last_key < QUIET_S:
            return
        if gc.get_count()[2] >= FULL_COLLECTION_AFTER:
            gc.collect()
            self.quiet_collections += 1

    # -- core events ---------------------------------------------------------------------

    def _forward_core_event(self, event: Event) -> None:
        # Not named ``_on_core_event``: Textual would also dispatch CoreEvent messages to it.
        # Listeners run as the event is published, so this is its time on the cockpit's clock;
        # some events are stamped by the wall clock where they are made, not the core's clock.
        self.post_message(CoreEvent(dataclasses.replace(event, at=self.clock.now())))

    @on(CoreEvent)
    def _queue_event(self, message: CoreEvent) -> None:
        self._pending.append(message.event)
        if self._flush_scheduled:
            return
        self._flush_scheduled = True
        delay = self._last_flush + self.refresh_interval - self.clock.monotonic()
        if delay <= 0:
            self.post_message(FlushEvents())
        else:
            self.clock.call_later(delay, lambda: self.post_message(FlushEvents()))

    @on(FlushEvents)
    def _apply_pending(self) -> None:
        self._flush_scheduled = False
        if not self._panes_ready or not self.is_running:
            return  # kept until the main screen is ready; dropped once the app shuts down
        self._last_flush = self.clock.monotonic()
        events, self._pending = self._pending, []
        if events:
            batch = digest(events, self.main.project_names)
            self.main.apply(batch)
            self.main.conversation_changed(conversation_threads(events))
            if batch.approvals and isinstance(self.screen, ApprovalsScreen):
                self.screen.refresh_approvals()
            self.batches_applied += 1

    # -- bindings and the command palette -----------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MAIN_SCREEN_ACTIONS and self.screen is not self.main:
            return False
        return action != "chat" or bool(self.demo_channel_ids)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Kill session", "Stop the selected session and forget it (asks first)", self.action_kill)
        yield SystemCommand("Restart session", "Clear the selected session's claude ID", self.action_restart)
        yield SystemCommand("Stop turn", "Stop the selected session's turn in progress", self.action_stop)
        yield SystemCommand("Jump into session", "Open the selected session with claude --resume", self.action_jump)
        yield SystemCommand("Attach to tmux run", "Attach to the selected session's tmux run", self.action_attach)
        yield SystemCommand(
            "Continue paused thread",
            "Raise the budget limit the selected thread is paused at, once, and run what it kept",
            self.action_continue_thread,
        )
        yield SystemCommand("Filter sessions", "Filter by key, project, agent or state", self.action_filter)
        yield SystemCommand("Toggle event log", "Show or hide the event log", self.action_toggle_log)
        yield SystemCommand(
            "Toggle conversation", "Show or hide the selected thread's conversation", self.action_toggle_conversation
        )
        for level in LEVELS:
            label = "all" if level == "debug" else level
            yield SystemCommand(
                f"Event log level: {label}",
                f"Show {'every entry' if level == 'debug' else f'{level} and above'}",
                lambda level=level: self.main.event_log.set_level(level),
            )
        yield SystemCommand(
            "Approvals", "Requests waiting for a person: allow, allow for the session, deny", self.action_approvals
        )
        if self.demo_channel_ids:
            yield SystemCommand("Chat", "Type a message to a demo channel", self.action_chat)

    # -- actions ---------------------------------------------------------------------------

    def _selected(self) -> SessionInfo | None:
        info = self.main.session_under_cursor
        if info is None:
            self.notify("Select a session first.", severity="warning")
        return info

    def action_kill(self) -> None:
        info = self._selected()
        if info is None:
            return
        key = info.key
        body = Text.assemble(
            ("Stops its run, forgets it in memory and on disk", ""),
            (", and removes its worktree" if info.worktree_path else "", ""),
            (".\n\n", ""),
            (f"project {self.main.project_names.get(info.project_key, info.project_key)}", "dim"),
            (f" · {info.state}", "dim"),
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._command(self.core.kill(key), "kill", key)

        self.push_screen(ConfirmScreen(f"Kill session {key}?", body, yes="Kill"), callback=confirmed)

    def action_restart(self) -> None:
        info = self._selected()
        if info is not None:
            self._command(self.core.restart(info.key), "restart", info.key)

    def action_continue_thread(self) -> None:
        """As the operator: lift the budget pause of the selected thread (its limit again)."""
        thread_id = self.main.selected_thread
        if thread_id is None:
            self.notify("Select a thread first.", severity="warning")
            return
        self._command(self.core.continue_thread(thread_id), "continue", thread_id)

    def action_stop(self) -> None:
        info = self._selected()
        if info is not None:
            self._command(self.core.stop(info.key), "stop", info.key)

    def _on_another_machine(self, info: SessionInfo, what: str, argv: Sequence[str]) -> bool:
        """Tell the operator what to run on the session's machine, if it is not this one."""
        far = self.elsewhere(info.key) if self.elsewhere is not None else None
        if far is None:
            return False
        host, _key = far
        command = fmt.command_line(["ssh", "-t", host, *argv])
        self.notify(
            f"{info.key} runs on {host}: its directory and claude session are there, not here. "
            f"In a terminal, run:\n{command}",
            title=f"{what} on {host}",
            severity="warning",
            timeout=60,
        )
        self.main.log_entry("info", f"{what} {info.key}: run `{command}`")
        return True

    def action_jump(self) -> None:
        info = self._selected()
        if info is None:
            return
        far = self.elsewhere(info.key) if self.elsewhere is not None else None
        if far is not None and self._on_another_machine(info, "Jump in", ["mpg-tui", "resume", far[1]]):
            return
        refusal = jump_refusal(info, self.which, self.claude_command)
        if refusal is not None:
            self.notify(refusal.text, title=refusal.title, severity=refusal.severity)
            return
        if info.state in ("running", "recovering"):
            body = Text.assemble(
                ("Claude is working on this session now. Jumping in holds the session: ", ""),
                ("no run of it starts while its claude is open here, and messages for it wait.\n\n", ""),
                ("Wait", "bold"),
                (" for the run to finish, or ", ""),
                ("stop", "bold"),
                (" it now?", ""),
            )

            def chosen(choice: IfRunning | None) -> None:
                if choice is not None:
                    self._jump(info, choice)

            self.push_screen(BusyScreen(info.key, body), callback=chosen)
            return
        self._jump(info, "refuse")

    def _jump(self, info: SessionInfo, if_running: IfRunning) -> None:
        if if_running == "wait":
            self.notify(f"Waiting for the run of {info.key} to finish; claude opens then.", title="Jump in")
        self.run_worker(
            self._run_held(info, if_running),
            name="handover",
            description=f"claude --resume {(info.session_id or '')[:8]}",
            group=HANDOVER_GROUP,
            exclusive=True,
            exit_on_error=False,
        )

    async def _run_held(self, info: SessionInfo, if_running: IfRunning) -> int:
        """Hold the session in the gateway, run its claude here, hand it back when claude exits."""

        def lost(reason: str) -> None:
            self.notify(f"{reason}; messages for it may run meanwhile.", title="Hold lost", severity="warning")

        async with keep_hold(self.core, info.key, holder_name(), if_running=if_running, on_lost=lost) as grant:
            handover = held_handover(grant, info, self.environ, self.claude_command)
            if handover.foreground:
                return await self._run_handover(handover)
            pid = await asyncio.to_thread(self.pane_launcher, handover.argv)
            await process_gone(pid)  # the window's claude: the hold lasts as long as it runs
            return 0

    def action_attach(self) -> None:
        info = self._selected()
        if info is None:
            return
        if not info.attach_command:
            self.notify(
                f"{info.key} runs {info.runner}, not in tmux: there is nothing to attach to. Use j to jump in.",
                title="Cannot attach",
                severity="warning",
            )
            return
        if self._on_another_machine(info, "Attach", info.attach_command):
            return
        self._hand_over(attach_handover(info, self.environ))

    def action_filter(self) -> None:
        self.main.open_filter()

    def action_toggle_log(self) -> None:
        self.main.toggle_log()

    def action_toggle_conversation(self) -> None:
        self.main.toggle_conversation()

    def action_approvals(self) -> None:
        """The approvals inbox: what claude waits for a person to decide."""
        info = self.main.session_under_cursor
        waiting = self.main.waiting_for(info.key) if info is not None else []
        self.push_screen(ApprovalsScreen(self.core, self.clock, select=waiting[0].id if waiting else None))

    def action_chat(self) -> None:
        self.main.focus_chat()

    async def action_quit(self) -> None:
        running = 0 if self.attached_to is not None else direct_runs_in_progress(self.core.sessions())
        if not running:
            self.exit()
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.exit()

        runs = f"{running} direct run{'s' * (running != 1)}"
        self.push_screen(
            ConfirmScreen("Quit mpg-tui?", f"{runs} will be stopped; tmux runs continue.", yes="Quit"),
            callback=confirmed,
        )

    @on(SessionsTable.JumpRequested)
    def _jump_requested(self) -> None:
        self.action_jump()

    @on(ChatBox.Submitted)
    def _chat_submitted(self, message: ChatBox.Submitted) -> None:
        self._command(self.core.post(message.channel_id, "you", message.text), "post", message.channel_id)

    # -- workers -----------------------------------------------------------------------------

    def _command(self, work: Awaitable[object], name: str, subject: str) -> None:
        self.run_worker(work, name=name, description=subject, group=COMMAND_GROUP, exit_on_error=False)

    def _hand_over(self, handover: Handover) -> None:
        self.run_worker(
            self._run_handover(handover),
            name="handover",
            description=handover.what,
            group=HANDOVER_GROUP,
            exclusive=True,
            exit_on_error=False,
        )

    async def _run_handover(self, handover: Handover) -> int:
        # The gateway shares this event loop, so the program runs in a thread: Discord
        # heartbeats and claude runs go on while the operator works in the terminal.
        if not handover.foreground:
            return await asyncio.to_thread(self.launcher, handover.argv, handover.cwd)
        # batch_update keeps Textual from painting into the terminal we just lent out.
        with self.suspend(), self.batch_update():
            return await asyncio.to_thread(self.launcher, handover.argv, handover.cwd)

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker, state = event.worker, event.state
        if state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        error = worker.error if state == WorkerState.ERROR else None
        if worker.name == CORE_WORKER:
            self._gateway_stopped(error)
        elif worker.group == COMMAND_GROUP:
            self._command_finished(worker.name, worker.description, worker.result, error)
        elif worker.group == HANDOVER_GROUP:
            self._handover_finished(worker.description, worker.result, error)

    def _gateway_stopped(self, error: BaseException | None) -> None:
        if error is None:
            problem = "gateway stopped"
            self.main.log_entry("warn", "the gateway stopped")
        else:
            problem = f"gateway failed: {type(error).__name__}: {error}"
            log.error("gateway failed", exc_info=error)
            self.main.log_entry("error", problem)
            self.notify(str(error) or type(error).__name__, title="Gateway failed", severity="error", timeout=30)
        self.main.header.problem = problem

    def _command_finished(self, name: str, subject: str, result: object, error: BaseException | None) -> None:
        if error is not None:
            text = f"{name} {subject} failed: {type(error).__name__}: {error}"
            self.main.log_entry("error", text)
            self.notify(text, severity="error")
            return
        said = command_outcome(name, subject, result)
        if said is not None:
            text, title, severity = said
            self.notify(text, title=title, severity=severity)

    def _handover_finished(self, what: str, result: object, error: BaseException | None) -> None:
        if isinstance(error, HoldError):
            self.notify(error.message, title="Cannot jump in", severity="warning")
        elif error is not None:
            text = f"could not open {what}: {error}"
            self.main.log_entry("error", text)
            self.notify(text, severity="error")
        elif isinstance(result, int) and result != 0:
            self.notify(f"{what} exited with status {result}.", severity="warning")


make_app = CockpitApp
"""The cockpit factory used by the CLI, the screenshots script and the tests: the class itself,
so its options are never a drifting copy of the constructor's."""
