"""What a thread is told about its budget: warnings, pauses, kept messages, continues."""

from __future__ import annotations

from collections.abc import Sequence

from mpg_tui.config import ProjectView
from mpg_tui.core.budget import SETTING, Pause, Raised, Stop, Warning_
from mpg_tui.core.events import BudgetLimit

PAUSE_PREFIX = "⏸️ "


def usd(amount: float) -> str:
    """Dollars as people read them: cents, or four places for amounts under a cent."""
    return f"${amount:.4f}" if 0 < abs(amount) < 0.01 else f"${amount:.2f}"


def _what(limit: BudgetLimit, project: ProjectView) -> str:
    if limit == "day":
        return f"project **{project.name}** has spent"
    return "this thread has spent"


def _against(limit: BudgetLimit, limit_usd: float) -> str:
    if limit == "day":
        return f"today's {usd(limit_usd)} budget ({SETTING[limit]})"
    return f"its {usd(limit_usd)} limit ({SETTING[limit]})"


def warning_text(warning: Warning_, project: ProjectView) -> str:
    share = round(100 * warning.spent / warning.limit_usd) if warning.limit_usd else 100
    return (
        f"⚠️ Budget: {_what(warning.limit, project)} {usd(warning.spent)} of "
        f"{_against(warning.limit, warning.limit_usd)}, {share}%. It pauses at the limit."
    )


def _who(project: ProjectView) -> str:
    roles = ", ".join(project.approver_roles)
    approvers = f", a member with the role {roles}" if roles else ""
    return f"the member who asked{approvers}, or the operator from the cockpit or dashboard"


def pause_text(stop: Stop, project: ProjectView, *, kept: bool) -> str:
    """The notice when a thread stops at a limit: what was spent, against what, how to go on."""
    scope = "in this project today" if stop.limit == "day" else "in this thread"
    configured = project.budget.daily_budget_usd if stop.limit == "day" else project.budget.max_thread_cost_usd
    again = f" allows another {usd(configured)}" if configured else " raises the limit"
    lines = [
        f"{PAUSE_PREFIX}Paused: {_what(stop.limit, project)} {usd(stop.spent)} against "
        f"{_against(stop.limit, stop.limit_usd)}. Nothing more runs {scope} until it is continued.",
        f"To go on: `!continue`{again}, `!continue <dollars>` that much more ({_who(project)}).",
    ]
    if stop.limit == "day":
        lines.append("The daily budget starts afresh at midnight.")
    lines.append(
        "The work that was about to run is kept and runs after the continue."
        if kept
        else "Messages sent meanwhile are kept and run after the continue."
    )
    return "\n".join(lines)


def kept_text(pause: Pause, project: ProjectView, *, kept: bool) -> str:
    """The reply to a message that arrives in a paused thread."""
    if not kept:
        return (
            f"{PAUSE_PREFIX}This thread is paused at {_against(pause.limit, pause.limit_usd)} and already keeps "
            f"{len(pause.held)} messages; this one was **not** kept. Send it again after `!continue`."
        )
    return (
        f"{PAUSE_PREFIX}This thread is paused at {_against(pause.limit, pause.limit_usd)}: your message is kept "
        f"({len(pause.held)} waiting) and runs after `!continue` ({_who(project)})."
    )


def turn_cap_text(spent: float, cap: float) -> str:
    """A turn claude ended at ``maxTurnCostUsd``: the thread is not paused, the next message runs."""
    return (
        f"{PAUSE_PREFIX}This turn stopped at its {usd(cap)} limit (maxTurnCostUsd) after spending {usd(spent)}; "
        "its unfinished answer was dropped. Send a message to go on: each turn may spend up to that much."
    )


def continued_text(raised: Raised, by: str, resumed: int) -> str:
    if raised.limits:
        parts = [
            f"{'the daily budget' if limit == 'day' else 'the thread limit'} is now {usd(value)}"
            for limit, value in raised.limits
        ]
        head = f"▶️ Continued by {by}: " + " and ".join(parts) + "."
    else:
        head = f"▶️ Continued by {by}: no limit is spent any more."
    if resumed:
        head += f" Running the {resumed} kept {'item' if resumed == 1 else 'items'} now."
    return head


def not_paused_text(limits: Sequence[BudgetLimit]) -> str:
    if limits:
        return "Nothing to continue: this thread is not paused."
    return "Nothing to continue: this thread is not paused, and its project sets no budget."
