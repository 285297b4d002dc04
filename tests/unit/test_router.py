from mpg_tui.config import GatewayConfig, parse_config
from mpg_tui.core.ports import InboundMessage
from mpg_tui.core.router import Router


def config(**projects: str) -> GatewayConfig:
    return parse_config(
        {"projects": {cid: {"name": name, "directory": f"/srv/{name}"} for cid, name in projects.items()}}
    )


def message(channel_id: str, parent: str | None = None) -> InboundMessage:
    return InboundMessage(
        id="m1", channel_id=channel_id, author_id="u", author_name="ann", content="hi", parent_channel_id=parent
    )


def test_message_in_mapped_channel_routes_to_its_project() -> None:
    route = Router(config(**{"100": "alpha"})).route(message("100"))
    assert route is not None
    assert (route.project.name, route.channel_id, route.thread_id, route.in_thread) == ("alpha", "100", None, False)


def test_message_in_thread_routes_by_parent_channel() -> None:
    route = Router(config(**{"100": "alpha"})).route(message("900", parent="100"))
    assert route is not None
    assert (route.project.key, route.channel_id, route.thread_id, route.in_thread) == ("100", "900", "900", True)


def test_unmapped_channel_and_unmapped_thread_are_ignored() -> None:
    router = Router(config(**{"100": "alpha"}))
    assert router.route(message("200")) is None
    assert router.route(message("900", parent="200")) is None


def test_reload_switches_to_the_new_mapping() -> None:
    router = Router(config(**{"100": "alpha"}))
    router.reload(config(**{"200": "beta"}))
    assert router.route(message("100")) is None
    route = router.route(message("200"))
    assert route is not None and route.project.name == "beta"


def test_route_carries_project_defaults_and_agents() -> None:
    cfg = parse_config(
        {
            "defaults": {"maxTurnsPerAgent": 3},
            "projects": {"100": {"directory": "/srv/a", "agents": ["pm"], "rateLimitPerUser": 4}},
        }
    )
    route = Router(cfg).route(message("100"))
    assert route is not None
    assert route.project.name == "100"  # no name: the channel ID stands in
    assert list(route.project.agents) == ["pm"]
    assert route.project.rate_limit_per_user == 4
    assert route.project.defaults.max_turns_per_agent == 3


def test_find_project_by_key_or_case_insensitive_name() -> None:
    router = Router(config(**{"100": "Alpha", "200": "Beta"}))
    assert router.find_project("100") is router.project("100")
    assert router.find_project(" alpha ") is router.project("100")
    assert router.find_project("gamma") is None
    assert [p.key for p in router.projects()] == ["100", "200"]
