"""Who may decide for a thread: lift a budget pause now, answer an approval later.

One rule, used by every decision the gateway asks people for:

* the member whose message started the work in question (the *requester*) may decide;
* so may a member with one of the project's ``approverRoles`` (matched by role name or
  ID, exactly as written, as :mod:`mpg_tui.core.access` matches ``allowedRoles``);
* the operator at the cockpit or the dashboard always may (:data:`OPERATOR`): whoever
  reaches those already controls the gateway.

Anyone else is refused with :func:`refusal_text`. ``approverRoles`` grants no access of
its own: a member must still pass ``allowedRoles`` to reach the project at all.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from mpg_tui.core.ports import InboundMessage


@dataclass(frozen=True)
class Member:
    """A chat member asking to decide, with the roles they hold."""

    id: str
    role_ids: tuple[str, ...] = ()
    role_names: tuple[str, ...] = ()

    @classmethod
    def of(cls, message: InboundMessage) -> Member:
        return cls(message.author_id, message.role_ids, message.role_names)


@dataclass(frozen=True)
class Operator:
    """The person at the cockpit or the dashboard."""


OPERATOR: Final = Operator()

Decider = Member | Operator


def may_decide(decider: Decider, *, requester_id: str | None, approver_roles: Collection[str]) -> bool:
    """Whether ``decider`` may decide for work that ``requester_id`` started."""
    if isinstance(decider, Operator):
        return True
    if requester_id is not None and decider.id == requester_id:
        return True
    roles = set(approver_roles)
    return bool(roles) and (not roles.isdisjoint(decider.role_ids) or not roles.isdisjoint(decider.role_names))


def refusal_text(approver_roles: Collection[str], *, what: str) -> str:
    """The reply to a member who may not decide ``what`` ("continue this thread")."""
    who = "the member who asked for this work"
    if approver_roles:
        who += " or a member with the role " + ", ".join(sorted(approver_roles))
    return f"You can't {what}: only {who} can (or the operator, from the cockpit or dashboard)."
