"""The demo world the cockpit's pictures show: three projects, a morning's traffic, one hour at a time.

:func:`build_demo` starts a :class:`~mpg_tui.sandbox.world.World` and plays the hours
before the cockpit opens (a recovered tmux run, finished sessions, costs);
:func:`play_demo` then plays a busy few minutes through the real gateway: threads open,
agents hand off, runs report progress, one queues, one fails, a member is refused. Every
step is a chat message or a runner's answer, so the world is one the core can reach, and
on a :class:`FakeClock` it is the same on every machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mpg_tui.core.clock import FakeClock
from mpg_tui.sandbox.inmemory import session_uuid
from mpg_tui.sandbox.world import World

SHOP = "1100000000000000001"
DOCS = "1100000000000000002"
INFRA = "1100000000000000003"

DEMO_CONFIG: dict[str, Any] = {
    "defaults": {"maxTurnsPerAgent": 5, "maxConcurrentSessions": 8, "idleTimeoutMs": 4 * 3_600_000},
    "projects": {
        SHOP: {"name": "shop-api", "directory": "/srv/mpg/shop-api", "agents": ["pm", "engineer", "qa"]},
        DOCS: {"name": "docs-site", "directory": "/srv/mpg/docs-site"},
        INFRA: {
            "name": "infra",
            "directory": "/srv/mpg/infra",
            "agents": ["devops"],
            "persistence": "tmux",
            "allowedRoles": ["ops"],
        },
    },
}

NIGHTLY = "1200000000000000097"
"""A tmux run the gateway found still going when it started."""
BACKUPS = "1200000000000000098"
RESTORED = "1200000000000000099"
"""The first thread of the day: a session with a few runs behind it, idle for hours."""
SEARCH = "1200000000000000101"
FLAKY = "1200000000000000102"
WEBHOOKS = "1200000000000000103"
CERTS = "1200000000000000104"

RESTORED_SESSION_ID = session_uuid(1)
BACKUPS_SESSION_ID = session_uuid(2)


def demo_world(state_dir: Path, clock: FakeClock | None = None) -> World:
    """The demo's gateway, just started (nothing has happened yet); needs no event loop."""
    return World(DEMO_CONFIG, state_dir, clock=clock or FakeClock())


async def build_demo(state_dir: Path, clock: FakeClock | None = None) -> World:
    """A gateway three hours into its day, as the cockpit finds it when it opens."""
    world = demo_world(state_dir, clock)
    await open_day(world)
    return world


async def open_day(world: World) -> None:
    """The hours before the cockpit opens: a recovered tmux run, a session with four runs, a check-up."""
    world.connect("ready")
    await world.recover(f"{NIGHTLY}:devops", INFRA, started_at=world.clock.now() - 600)

    restored = await world.ask(DOCS, "draft the v2.3 changelog", message_id=RESTORED)
    assert restored == RESTORED
    turns = [
        (None, "Drafted the changelog from the merged PRs.", 0.061, 13_900, 2_600),
        ("group them by area", "Grouped the entries by area.", 0.048, 11_200, 2_100),
        ("add upgrade notes", "Added the upgrade notes.", 0.055, 12_400, 2_300),
        ("publish it", "Published the changelog for **v2.3**.", 0.048, 10_700, 2_100),
    ]
    for follow_up, reply, cost, tokens_in, tokens_out in turns:
        if follow_up is not None:
            await world.ask(RESTORED, follow_up)
        world.clock.advance(40)
        await world.finish(
            RESTORED,
            reply,
            cost_usd=cost,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            session_id=RESTORED_SESSION_ID,
        )
    world.clock.advance(3 * 3600 - 40 * 60)

    backups = await world.ask(INFRA, "@devops check last night's backups", message_id=BACKUPS)
    assert backups == f"{BACKUPS}:devops"
    world.clock.advance(50)
    await world.finish(
        backups,
        "All 14 backups verified; the oldest is 6 days old.",
        cost_usd=0.094,
        input_tokens=20_500,
        output_tokens=3_900,
        session_id=BACKUPS_SESSION_ID,
    )
    world.clock.advance(40 * 60)


async def play_demo(world: World) -> None:
    """A few busy minutes: threads open, agents hand off, runs finish, queue and fail."""
    clock = world.clock
    pm = await world.ask(SHOP, "@pm add search to the admin dashboard", message_id=SEARCH)
    assert pm == f"{SEARCH}:pm"
    clock.advance(14)
    world.progress(pm, "src/admin/dashboard.tsx", tool="Read")
    clock.advance(9)
    await world.finish(
        pm,
        "Requirements are in #212.\n\nHANDOFF @engineer: build the search box",
        cost_usd=0.041,
        input_tokens=9_800,
        output_tokens=1_250,
    )

    qa = await world.ask(SHOP, "@qa why does checkout.spec.ts fail one time in ten?", message_id=FLAKY)
    assert qa == f"{FLAKY}:qa"
    clock.advance(6)
    await world.finish(qa, "The test races the payment mock.", cost_usd=0.033, input_tokens=7_700, output_tokens=900)
    await world.ask(FLAKY, "@engineer fix the race in checkout.spec.ts")

    await world.ask(DOCS, "document the webhooks API", message_id=WEBHOOKS)
    await world.ask(WEBHOOKS, "and the retry policy")  # waits behind the first

    await world.ask(INFRA, "@devops rotate the staging certificates", message_id=CERTS)
    clock.advance(31)
    for tool, text in [
        ("Grep", "useSearch in src/"),
        ("Read", "src/admin/api.ts"),
        ("Edit", "src/admin/SearchBox.tsx"),
        (None, "Adding a debounced query hook; then the API route and its tests."),
    ]:
        world.progress(f"{SEARCH}:engineer", text, tool=tool)
    world.progress(f"{FLAKY}:engineer", "checkout.spec.ts", tool="Read")
    world.progress(f"{CERTS}:devops", "terraform plan -target=module.certs", tool="Bash")
    await world.fail(
        f"{FLAKY}:engineer",
        "API Error: 529 overloaded — try again in a minute",
        kind="overloaded",
        cost_usd=0.012,
        input_tokens=2_100,
        output_tokens=150,
    )
    await world.ask(INFRA, "@devops give me prod access", author="mallory", roles=())
    clock.advance(47)


CROWD_OPENERS = {SHOP: "@engineer look at issue {n}", DOCS: "look at page {n}", INFRA: "@devops look at host {n}"}


async def crowded(state_dir: Path, sessions: int, clock: FakeClock | None = None) -> World:
    """The demo's projects with ``sessions`` threads the gateway opened and answered, one second apart.

    Runs answer at once while it fills; afterwards they are held open again.
    """
    defaults = {**DEMO_CONFIG["defaults"], "maxConcurrentSessions": 100}
    world = World({**DEMO_CONFIG, "defaults": defaults}, state_dir, clock=clock or FakeClock())
    world.connect("ready")
    world.hold_runs(False)
    projects = [SHOP, DOCS, INFRA]
    for n in range(sessions):
        project = projects[n % len(projects)]
        await world.ask(project, CROWD_OPENERS[project].format(n=n))
        world.clock.advance(1)
    await world.idle()
    world.hold_runs(True)
    return world
