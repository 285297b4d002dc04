"""``maxTurnCostUsd`` reaches the real CLI as ``--max-budget-usd``, and the CLI ends the turn there.

The Messages API stand-in reports token counts that cost more than the cap; the real CLI
stops after that call with its ``error_max_budget_usd`` result, which the runner reads as
``max_budget`` and the gateway turns into the turn-limit notice.
"""

from __future__ import annotations

import pytest

from mpg_tui.core.clock import SystemClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import InboundMessage
from mpg_tui.core.runner import Runner
from mpg_tui.sandbox.inmemory import InMemoryChat
from tests.contract.conftest import CHANNEL, ClaudeWorld, MakeCore
from tests.contract.messages_api import Text

pytestmark = pytest.mark.contract

# 2,000 output tokens cost about $0.03 at any current model's prices: far over a $0.001 cap.
DEAR = {"input_tokens": 50, "output_tokens": 2000}


async def test_the_cli_ends_a_turn_at_max_budget_usd_and_the_runner_says_so(world: ClaudeWorld, runner: Runner) -> None:
    world.api.script(Text("An expensive answer.", **DEAR))
    args = [*world.project_view().claude_args(), "--max-budget-usd", "0.001"]

    result = await runner.run(world.request("Think hard.", args=args), lambda _p: None)

    assert not result.ok and result.error_kind == "max_budget", result.error
    assert result.cost_usd > 0.001  # checked after the call: the call that crossed it is paid for
    assert result.text == ""
    assert result.error is not None and "Reached maximum budget" in result.error
    assert len(world.api.requests) == 1


async def test_max_turn_cost_reaches_claude_through_the_gateway(
    world: ClaudeWorld, runner: Runner, make_core: MakeCore
) -> None:
    core = make_core(runner, maxTurnCostUsd=0.001)
    chat = InMemoryChat()
    gateway = Gateway(config=core.config, sessions=core.manager, bus=core.bus, clock=SystemClock(), chat=chat)
    world.api.script(Text("An expensive answer.", **DEAR))

    await gateway.handle_message(
        InboundMessage(id="1001", channel_id=CHANNEL, author_id="42", author_name="ana", content="think hard")
    )

    [thread] = chat.threads
    [notice] = chat.texts(thread)
    assert notice.startswith("⏸️ This turn stopped at its $0.0010 limit (maxTurnCostUsd) after spending $0.0")
