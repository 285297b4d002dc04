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
    budgets: reactive[tuple[tuple[str, float, float | None], ...]] = reactive(())
    """(project, spent today, today's budget) for the projects with a daily budget."""
    approvals: reactive[int] = reactive(0)
    """Requests waiting for a person (the inbox, ``i``)."""
    problem: reactive[str | None] = reactive(None)
    """A gateway failure to keep in sight (the core stopped, ...)."""

    def __init__(
        self,
        version: str,
        dashboard_url: str | None = None,
        *,
        attached_to: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.version = version
        self.dashboard_url = dashboard_url
        self.attached_to = attached_to
        """The gateway this cockpit is attached to, when the gateway runs in another process."""

    def render(self) -> RenderableType:
        left = Text.assemble((" ◆ mpg-tui ", f"bold {fmt.ACCENT}"), (self.version, fmt.MUTED), "   ")
        if self.attached_to is not None:
            left.append_text(Text.assemble(("attached ", f"bold {fmt.ACCENT}"), (self.attached_to, fmt.MUTED), "   "))
        if self.problem:
            left.append(f"⚠ {self.problem}", style=f"bold {fmt.ERROR}")
        else:
            left.append_text(fmt.connection_text(self.connection))
            if self.connection_detail and self.connection != "ready":
                left.append(f" ({fmt.truncate(self.connection_detail, 60)})", style=fmt.MUTED)
        if self.approvals:
            left.append(f"   ⏳ {self.approvals} waiting for you (i)", style=f"bold {fmt.QUEUED}")

        # Right-hand facts in order of importance; the less important go when space runs out.
        room = self.size.width - min(left.cell_len, 48) - 1
        right = Text(justify="right")
        for fact in self._facts():
            if right.cell_len + fact.cell_len > room:
                break
            right.append_text(fact)

        grid = Table.grid(expand=True)
        grid.add_column(justify="left", ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row(left, right)
        return grid

    def _facts(self) -> list[Text]:
        totals = self.totals
        runs = Text.assemble(("   runs ", fmt.MUTED), str(totals.runs))
        if totals.failures:
            runs.append(f" ({totals.failures} failed)", style=fmt.ERROR)
        facts = [
            Text.assemble(("up ", fmt.MUTED), fmt.uptime(self.uptime)),
            runs,
            *self._budget_facts(),
            Text.assemble(("   cost ", fmt.MUTED), fmt.cost(totals.cost_usd) if totals.cost_usd else "$0"),
            Text.assemble(
                ("   tokens ", fmt.MUTED),
                f"{fmt.tokens(totals.input_tokens)} in · {fmt.tokens(totals.output_tokens)} out",
            ),
        ]
        if self.dashboard_url:
            facts.append(Text.assemble(("   dashboard ", fmt.MUTED), (self.dashboard_url, f"underline {fmt.ACCENT}")))
        facts.append(Text(" "))
        return facts

    def _budget_facts(self) -> list[Text]:
        """``today shop $1.20/$5`` per project with a daily budget; red once it is spent."""
        if not self.budgets:
            return []
        fact = Text.assemble(("   today ", fmt.MUTED))
        for index, (name, spent, budget) in enumerate(self.budgets):
            if index:
                fact.append(" · ", style=fmt.MUTED)
            spent_style = fmt.ERROR if budget is not None and spent >= budget else fmt.TEXT
            fact.append(f"{fmt.truncate(name, 16)} ", style=fmt.MUTED)
            fact.append(f"${spent:.2f}", style=spent_style)
            fact.append(f"/${budget:g}" if budget is not None else "", style=fmt.MUTED)
        return [fact]
