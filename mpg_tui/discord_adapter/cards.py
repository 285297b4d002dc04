"""Approval cards as Discord message components, and clicks on them back as core clicks.

Each button's ``custom_id`` is ``mpg:<request id>:<choice>``; the request ID is random and
checked by the core, so a click on anything else (another bot's buttons, a stale card) is
ignored or told the request is no longer waiting.
"""

from __future__ import annotations

import discord

from mpg_tui.core.ports import ApprovalCard, CardClick

PREFIX = "mpg"
MAX_ROWS = 5
_STYLES = {
    "allow": discord.ButtonStyle.success,
    "deny": discord.ButtonStyle.danger,
    "neutral": discord.ButtonStyle.secondary,
}


def custom_id(request_id: str, value: str) -> str:
    return f"{PREFIX}:{request_id}:{value}"


def build_view(card: ApprovalCard, *, disabled: bool = False) -> discord.ui.View:
    """The card's buttons. The view is never stored for dispatch: clicks arrive through
    ``on_interaction`` (:func:`parse_click`), which survives a gateway restart."""
    view = discord.ui.View(timeout=None)
    for choice in card.choices:
        view.add_item(
            discord.ui.Button(
                label=choice.label[:80],
                style=_STYLES[choice.style],
                custom_id=custom_id(card.request_id, choice.value),
                disabled=disabled,
                row=min(choice.row, MAX_ROWS - 1),
            )
        )
    view.stop()
    return view


def parse_click(interaction: discord.Interaction) -> CardClick | None:
    """The click an interaction carries, or None when it is not a press of one of our buttons."""
    if interaction.type is not discord.InteractionType.component or interaction.data is None:
        return None
    raw = interaction.data.get("custom_id")
    if not isinstance(raw, str):
        return None
    prefix, _, rest = raw.partition(":")
    request_id, _, value = rest.partition(":")
    if prefix != PREFIX or not request_id or not value:
        return None
    user = interaction.user
    roles = [r for r in getattr(user, "roles", []) if not r.is_default()]
    return CardClick(
        request_id=request_id,
        value=value,
        member_id=str(user.id),
        member_name=user.display_name,
        role_ids=tuple(str(r.id) for r in roles),
        role_names=tuple(r.name for r in roles),
    )
