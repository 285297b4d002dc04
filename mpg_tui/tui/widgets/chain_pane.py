"""The handoff chain of the selected thread: you → pm → engineer → …, hop by hop."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from mpg_tui.core.api import ChainHop, HandoffChain
from mpg_tui.tui import formatting as fmt

HOP_STYLE: dict[str, tuple[str, str]] = {
    "running": ("●", fmt.RUNNING),
    "done": ("✓", fmt.IDLE),
    "failed": ("✗", fmt.ERROR),
    "queued": ("◔", fmt.QUEUED),
}
CHAIN_STYLE: dict[str, tuple[str, str]] = {
    "running": ("running", fmt.RUNNING),
    "done": ("done", fmt.IDLE),
    "turn_limit": ("turn limit reached", fmt.QUEUED),
    "error": ("stopped by an error", fmt.ERROR),
}


class ChainPane(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chain: HandoffChain | None = None
        self.thread_id: str | None = None

    def show(self, thread_id: str | None, chain: HandoffChain | None, now: float) -> None:
        self.thread_id = thread_id
        self.chain = chain
        self.update(self._render_chain(now), layout=False)  # its size is set by the layout, not the content

    def _render_chain(self, now: float) -> RenderableType:
        chain = self.chain
        if chain is None:
            hint = (
                "Select a thread to see its handoffs." if self.thread_id is None else "No handoffs in this thread yet."
            )
            return Text(hint, style=fmt.MUTED)
        label, colour = CHAIN_STYLE.get(chain.state, (chain.state, fmt.TEXT))
        summary = Text.assemble(
            ("turns ", fmt.MUTED),
            (f"{chain.turns}/{chain.max_turns}", f"bold {fmt.TEXT}"),
            ("  ·  ", fmt.MUTED),
            (label, colour),
        )
        hops = Table.grid(padding=(0, 2, 0, 0))
        hops.add_column(no_wrap=True, overflow="ellipsis")
        hops.add_column(no_wrap=True, justify="right")
        hops.add_column(no_wrap=True, justify="right")
        hops.add_row(Text("you", style=f"bold {fmt.TEXT}"), "", "")
        for index, hop in enumerate(chain.hops):
            last = index == len(chain.hops) - 1
            hops.add_row(*self._hop_cells(hop, last, now))
        return Group(summary, Text(""), hops)

    @staticmethod
    def _hop_cells(hop: ChainHop, last: bool, now: float) -> tuple[Text, Text, Text]:
        glyph, colour = HOP_STYLE.get(hop.state, ("?", fmt.TEXT))
        elbow = "└▶ " if last else "├▶ "
        seconds = (now - hop.started_at) if hop.state == "running" else hop.duration_ms / 1000
        took = fmt.duration(seconds) if hop.state != "queued" else fmt.NONE
        return (
            # The glyph and its colour carry the hop's state; words would not fit a narrow pane.
            Text.assemble((elbow, fmt.MUTED), (f"{glyph} ", colour), (hop.agent, f"bold {fmt.ACCENT}")),
            Text(took, style=fmt.IDLE),
            Text(fmt.cost(hop.cost_usd), style=fmt.TEXT if hop.cost_usd else fmt.MUTED),
        )
