"""The one-line header: who we are, whether Discord is connected, uptime and spend."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from mpg_tui.core.api import Totals
from mpg_tui.tui import formatting as fmt


class CockpitHeader(Widget):
    connection: reactive[str] = reactive("connecting")
    connection_detail: reactive[str] = reactive("")
    uptime: reactive[float] = reactive(0.0)
    totals: reactive[Totals] = reactive(Totals(0, 0, 0.0, 0, 0))
    problem: reactive[str | None] = reactive(None)
    """A gateway failure to keep in sight (the core stopped, ...)."""

    def __init__(self, version: str, dashboard_url: str | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.version = version
        self.dashboard_url = dashboard_url

    def render(self) -> RenderableType:
        left = Text.assemble((" ◆ mpg-tui ", f"bold {fmt.ACCENT}"), (self.version, fmt.MUTED), "   ")
        if self.problem:
            left.append(f"⚠ {self.problem}", style=f"bold {fmt.ERROR}")
        else:
            left.append_text(fmt.connection_text(self.connection))
            if self.connection_detail and self.connection != "ready":
                left.append(f" ({fmt.truncate(self.connection_detail, 60)})", style=fmt.MUTED)

        totals = self.totals
        right = Text.assemble(
            ("up ", fmt.MUTED),
            fmt.uptime(self.uptime),
            ("   runs ", fmt.MUTED),
            str(totals.runs),
        )
        if totals.failures:
            right.append(f" ({totals.failures} failed)", style=fmt.ERROR)
        right.append("   cost ", style=fmt.MUTED)
        right.append(fmt.cost(totals.cost_usd) if totals.cost_usd else "$0")
        right.append("   tokens ", style=fmt.MUTED)
        right.append(f"{fmt.tokens(totals.input_tokens)} in · {fmt.tokens(totals.output_tokens)} out")
        if self.dashboard_url:
            right.append("   dashboard ", style=fmt.MUTED)
            right.append(self.dashboard_url, style=f"underline {fmt.ACCENT}")
        right.append(" ")

        grid = Table.grid(expand=True)
        grid.add_column(justify="left", ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(left, right)
        return grid
