"""Role-based access to a project (``allowedRoles``).

An entry matches a member's role by its name or by its ID, exactly as written (MPG's
rule; Discord role names are case-sensitive and two roles may differ only in case). An
empty or missing list lets everyone in. The gateway checks every message, ``!``
commands included (as later MPG versions do), before anything else happens.
"""

from __future__ import annotations

from collections.abc import Iterable

from mpg_tui.config import ProjectView
from mpg_tui.core.ports import InboundMessage


def allowed(project: ProjectView, role_ids: Iterable[str], role_names: Iterable[str]) -> bool:
    """Whether a member with these roles may use ``project``."""
    required = set(project.allowed_roles)
    if not required:
        return True
    return not required.isdisjoint(role_ids) or not required.isdisjoint(role_names)


def denial_text(project: ProjectView) -> str:
    """The reply to a member without a required role."""
    roles = ", ".join(project.allowed_roles)
    return f"You don't have permission to use this project. Required role: {roles}"


def check(project: ProjectView, message: InboundMessage) -> str | None:
    """None when the message's author may use ``project``; otherwise the reply to send."""
    if allowed(project, message.role_ids, message.role_names):
        return None
    return denial_text(project)
