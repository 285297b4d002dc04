"""Approval cards over real discord.py and the sandbox: buttons, clicks as interactions, private answers.

The gateway's Discord client posts a card with buttons, a sandbox member clicks one
(INTERACTION_CREATE), the click reaches the handler with the member's roles, the answer
comes back through the interaction callback as an ephemeral message, and closing the card
disables its buttons.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mpg_tui.core.bus import EventBus
from mpg_tui.core.ports import ApprovalCard, CardChoice, CardClick
from mpg_tui.discord_adapter.client import GatewayClient
from mpg_tui.sandbox.discord import SandboxServer
from mpg_tui.sandbox.discord.interactions import InteractionRecord

pytestmark = pytest.mark.e2e

CARD = ApprovalCard(
    "r4nd0m",
    "🔐 **Claude wants to use Bash**\n```\npython3 -m pytest\n```",
    (
        CardChoice("allow", "Allow once", "allow"),
        CardChoice("session", "Allow for this session"),
        CardChoice("deny", "Deny", "deny"),
    ),
)


@pytest.fixture
async def client(sandbox: SandboxServer) -> AsyncIterator[tuple[GatewayClient, list[CardClick]]]:
    clicks: list[CardClick] = []

    async def on_click(click: CardClick) -> str:
        clicks.append(click)
        return "Allowed once by alice." if click.member_name == "alice" else "Not yours to decide."

    async def ignore(_message: object) -> None:
        return None

    bot = GatewayClient(handler=ignore, bus=EventBus(), members_intent=True, guild_ready_timeout=0.1, on_click=on_click)
    task = asyncio.create_task(bot.run_until_closed(sandbox.token))
    await asyncio.wait_for(bot.ready.wait(), 10)
    yield bot, clicks
    await bot.close()
    await task


async def answered(record: InteractionRecord) -> None:
    await asyncio.wait_for(record.answered_event.wait(), 10)


async def test_a_click_reaches_the_gateway_and_is_answered_privately_then_the_card_closes(
    sandbox: SandboxServer, client: tuple[GatewayClient, list[CardClick]]
) -> None:
    bot, clicks = client
    channel = sandbox.spec.channel("general").id
    message_id = await bot.chat.post_card(channel, CARD)
    [posted] = [m for m in sandbox.messages(channel) if m["id"] == message_id]
    buttons = posted["components"][0]["components"]
    assert [(b["label"], b["custom_id"], b["style"]) for b in buttons] == [
        ("Allow once", "mpg:r4nd0m:allow", 3),
        ("Allow for this session", "mpg:r4nd0m:session", 2),
        ("Deny", "mpg:r4nd0m:deny", 4),
    ]

    bob = sandbox.click(channel, message_id, sandbox.spec.user("bob").id, "mpg:r4nd0m:allow")
    alice = sandbox.click(channel, message_id, sandbox.spec.user("alice").id, "mpg:r4nd0m:allow")
    await answered(bob)
    await answered(alice)
    assert bob.responses == [
        {"type": 4, "content": "Not yours to decide.", "ephemeral": True, "message_id": bob.responses[0]["message_id"]}
    ]
    assert alice.responses[0]["content"] == "Allowed once by alice." and alice.responses[0]["ephemeral"]
    assert [(c.request_id, c.value, c.member_name) for c in clicks] == [
        ("r4nd0m", "allow", "bob"),
        ("r4nd0m", "allow", "alice"),
    ]
    assert clicks[1].role_names == ("developer",)
    assert not any(m["content"] == "Not yours to decide." for m in sandbox.messages(channel))  # never in the channel

    await bot.chat.close_card(channel, message_id, CARD, "✅ Allowed once by alice.")
    [closed] = [m for m in sandbox.messages(channel) if m["id"] == message_id]
    assert closed["content"].endswith("**✅ Allowed once by alice.**")
    assert all(b["disabled"] for b in closed["components"][0]["components"])


async def test_clicks_on_buttons_that_are_not_ours_are_left_alone(
    sandbox: SandboxServer, client: tuple[GatewayClient, list[CardClick]]
) -> None:
    bot, clicks = client
    channel = sandbox.spec.channel("general").id
    foreign = ApprovalCard("x", "someone else's", (CardChoice("go", "Go"),))
    message_id = await bot.chat.post_card(channel, foreign)
    # Rewrite the button as another app's: the gateway must not answer it.
    sandbox.state.message(channel, message_id).components[0]["components"][0]["custom_id"] = "other-app:go"
    record = sandbox.click(channel, message_id, sandbox.spec.user("alice").id, "other-app:go")
    proof = await bot.chat.post_card(channel, CARD)  # a later click that is ours is answered
    ours = sandbox.click(channel, proof, sandbox.spec.user("alice").id, "mpg:r4nd0m:deny")
    await answered(ours)
    assert record.responses == [] and [c.value for c in clicks] == ["deny"]
