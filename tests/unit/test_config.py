"""config.json: MPG's defaults and merge rules, agents, and the errors a person reads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from mpg_tui.config import (
    DEFAULT_ALLOWED_TOOLS,
    DEFAULT_CLAUDE_ARGS,
    ConfigError,
    EnvSettings,
    GatewayConfig,
    config_warnings,
    is_snowflake,
    load_config,
    parse_config,
    resolve_agents,
)
from mpg_tui.config.loading import _json_path
from mpg_tui.presets import PRESETS

CID = "123456789012345678"
BASE = ["--permission-mode", "acceptEdits", "--output-format", "json"]


def one_project(**fields: Any) -> dict[str, Any]:
    return {"projects": {CID: {"directory": "/srv/app", **fields}}}


def problems_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


# --- defaults -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("idle_timeout_ms", 1_800_000),
        ("max_concurrent_sessions", 4),
        ("claude_args", ["--permission-mode", "acceptEdits", "--output-format", "json"]),
        ("allowed_tools", ["Read", "Edit", "Write", "Glob", "Grep", "Bash(git:*)", "TodoWrite"]),
        ("disallowed_tools", []),
        ("max_turns_per_agent", 5),
        ("agent_timeout_ms", 180_000),
        ("session_ttl_ms", 604_800_000),
        ("persistence", None),
        ("max_persisted_sessions", 50),
        ("http_port", 3100),
        ("log_level", "info"),
        ("stuck_notify_ms", 300_000),
        ("max_attachment_size_mb", 10),
        ("allowed_mime_types", ["image/*", "text/*", "application/pdf", "application/json"]),
        ("max_attachments_per_message", 5),
        ("http_host", "127.0.0.1"),
        ("dashboard_token", None),
        ("tmux_socket", "mpg-tui"),
        ("worktrees", True),
        ("run_timeout_ms", 1_800_000),
    ],
)
def test_an_empty_config_gets_mpgs_default(attribute: str, expected: Any) -> None:
    assert getattr(parse_config({}).defaults, attribute) == expected


def test_default_lists_are_not_shared_between_configs() -> None:
    first, second = parse_config({}), parse_config({})
    assert first.defaults.allowed_tools is not second.defaults.allowed_tools
    assert first.defaults.allowed_tools is not DEFAULT_ALLOWED_TOOLS
    assert first.defaults.claude_args is not DEFAULT_CLAUDE_ARGS


def test_camel_case_keys_set_every_default() -> None:
    data = {
        "defaults": {
            "idleTimeoutMs": 1,
            "maxConcurrentSessions": 2,
            "claudeArgs": ["--x"],
            "allowedTools": ["Read"],
            "disallowedTools": ["Bash"],
            "maxTurnsPerAgent": 0,
            "agentTimeoutMs": 5000,
            "sessionTtlMs": 7,
            "persistence": "tmux",
            "maxPersistedSessions": 9,
            "httpPort": False,
            "logLevel": "warn",
            "stuckNotifyMs": 0,
            "maxAttachmentSizeMb": 0.5,
            "allowedMimeTypes": ["text/plain"],
            "maxAttachmentsPerMessage": 1,
            "tmuxSocket": "s",
        }
    }
    d = parse_config(data).defaults
    assert (d.idle_timeout_ms, d.max_concurrent_sessions, d.claude_args) == (1, 2, ["--x"])
    assert (d.allowed_tools, d.disallowed_tools, d.max_turns_per_agent) == (["Read"], ["Bash"], 0)
    assert (d.agent_timeout_ms, d.session_ttl_ms, d.persistence, d.max_persisted_sessions) == (5000, 7, "tmux", 9)
    assert (d.http_port, d.log_level, d.stuck_notify_ms) == (False, "warn", 0)
    assert (d.max_attachment_size_mb, d.allowed_mime_types, d.max_attachments_per_message) == (
        0.5,
        ["text/plain"],
        1,
    )
    assert d.tmux_socket == "s"


# --- project views: what the core uses ------------------------------------------------


def test_a_project_inherits_defaults_and_is_named_after_its_channel() -> None:
    view = parse_config(one_project()).project(CID)
    assert view is not None
    assert (view.key, view.channel_id, view.name) == (CID, CID, CID)
    assert view.idle_timeout_ms == 1_800_000
    assert view.persistence == "direct"
    assert view.worktrees is True
    assert view.allowed_roles == []
    assert view.rate_limit_per_user is None
    assert view.agents == {}


def test_project_settings_override_defaults() -> None:
    data = {
        "defaults": {"persistence": "tmux", "worktrees": False, "idleTimeoutMs": 5},
        "projects": {
            CID: {
                "directory": "/a",
                "name": "web",
                "idleTimeoutMs": 60_000,
                "persistence": "direct",
                "worktrees": True,
                "allowedRoles": ["dev"],
                "rateLimitPerUser": 3,
            },
            "223456789012345678": {"directory": "/b"},
        },
    }
    config = parse_config(data)
    web, other = config.views()
    assert (web.name, web.idle_timeout_ms, web.persistence, web.worktrees) == ("web", 60_000, "direct", True)
    assert (web.allowed_roles, web.rate_limit_per_user) == (["dev"], 3)
    assert (other.idle_timeout_ms, other.persistence, other.worktrees) == (5, "tmux", False)
    assert config.needs_members_intent is True
    assert config.uses_tmux is True


def test_a_rate_limit_of_zero_means_no_limit() -> None:
    view = parse_config(one_project(rateLimitPerUser=0)).project(CID)
    assert view is not None and view.rate_limit_per_user is None


def test_views_are_built_once_and_looked_up_by_channel() -> None:
    config = parse_config(one_project())
    assert config.project(CID) is config.views()[0]
    assert config.project("999") is None


def test_needs_members_intent_only_when_some_project_restricts_roles() -> None:
    assert parse_config(one_project(allowedRoles=[])).needs_members_intent is False
    assert parse_config(one_project()).uses_tmux is False


# --- claude arguments and tool rules --------------------------------------------------


def args_for(data: dict[str, Any]) -> list[str]:
    view = parse_config(data).project(CID)
    assert view is not None
    return view.claude_args()


def test_default_tools_are_allowed_after_the_default_arguments() -> None:
    assert args_for(one_project()) == [*BASE, "--allowed-tools", *DEFAULT_ALLOWED_TOOLS]


def test_project_claude_args_are_appended_to_the_defaults() -> None:
    assert args_for(one_project(claudeArgs=["--model", "sonnet"]))[:6] == [*BASE, "--model", "sonnet"]


def test_project_allowed_tools_replace_the_default_list() -> None:
    assert args_for(one_project(allowedTools=["Read"])) == [*BASE, "--allowed-tools", "Read"]


def test_allowed_tools_win_over_disallowed_tools_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mpg_tui.config"):
        args = args_for(one_project(allowedTools=["Read"], disallowedTools=["Bash"]))
    assert args == [*BASE, "--allowed-tools", "Read"]
    assert f"projects.{CID} sets both allowedTools and disallowedTools; allowedTools wins" in caplog.text


def test_defaults_with_both_tool_lists_warn_once_at_load(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mpg_tui.config"):
        config = parse_config({"defaults": {"disallowedTools": ["Bash"]}, **one_project()})
        view = config.project(CID)
        assert view is not None
        view.claude_args()
        view.claude_args()
    assert caplog.text.count("defaults sets both allowedTools and disallowedTools") == 1


def test_an_empty_allowed_list_is_disallow_only_mode() -> None:
    args = args_for(one_project(allowedTools=[], disallowedTools=["WebFetch", "WebSearch"]))
    assert args == [*BASE, "--disallowed-tools", "WebFetch", "WebSearch"]


def test_disallowed_tools_alone_are_ignored_under_the_inherited_allowlist(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mpg_tui.config"):
        args = args_for(one_project(disallowedTools=["Bash"]))
    assert args == [*BASE, "--allowed-tools", *DEFAULT_ALLOWED_TOOLS]
    assert 'set "allowedTools": [] for disallow-only mode' in caplog.text


def test_no_tool_flags_when_both_lists_are_empty() -> None:
    assert args_for({"defaults": {"allowedTools": []}, **one_project()}) == BASE


@pytest.mark.parametrize(
    "configured",
    [["--allowed-tools", "Bash"], ["--disallowed-tools", "Bash"], ["--allowedTools", "Bash"], ["--disallowedTools=X"]],
)
def test_tool_flags_are_skipped_when_project_claude_args_carry_one(configured: list[str]) -> None:
    assert args_for(one_project(claudeArgs=configured)) == [*BASE, *configured]


def test_tool_flags_are_skipped_when_default_claude_args_carry_one() -> None:
    data = {"defaults": {"claudeArgs": ["--allowed-tools", "Read"]}, **one_project(allowedTools=["Edit"])}
    assert args_for(data) == ["--allowed-tools", "Read"]


def test_claude_args_returns_a_fresh_list_each_time() -> None:
    view = parse_config(one_project()).project(CID)
    assert view is not None
    view.claude_args().append("--mutated")
    assert "--mutated" not in view.claude_args()


# --- agents ---------------------------------------------------------------------------


def test_a_preset_list_gives_the_presets_under_lower_case_names() -> None:
    view = parse_config(one_project(agents=["PM", "engineer"])).project(CID)
    assert view is not None
    assert list(view.agents) == ["pm", "engineer"]
    assert (view.agents["pm"].role, view.agents["pm"].prompt) == PRESETS["pm"]


def test_a_preset_with_a_prompt_appends_it_to_the_preset_prompt() -> None:
    view = parse_config(one_project(agents={"Eng": {"preset": "Engineer", "prompt": "Use pytest."}})).project(CID)
    assert view is not None
    agent = view.agent("ENG")
    assert agent is not None
    assert agent.name == "eng"
    assert agent.role == PRESETS["engineer"][0]
    assert agent.prompt == f"{PRESETS['engineer'][1]}\n\nUse pytest."


def test_a_preset_role_can_be_renamed() -> None:
    agents = resolve_agents(
        parse_config(one_project(agents={"lead": {"preset": "pm", "role": "Tech Lead"}})).projects[CID].agents
    )
    assert agents["lead"].role == "Tech Lead"
    assert agents["lead"].prompt == PRESETS["pm"][1]


def test_a_custom_agent_has_its_own_role_and_prompt() -> None:
    view = parse_config(one_project(agents={"Writer": {"role": "Technical Writer", "prompt": "Docs."}})).project(CID)
    assert view is not None
    agent = view.agent("writer")
    assert agent is not None
    assert (agent.name, agent.role, agent.prompt) == ("writer", "Technical Writer", "Docs.")
    assert agent.system_prompt == "Your role: Technical Writer\n\nDocs."


def test_a_null_agent_named_like_a_preset_is_that_preset() -> None:
    view = parse_config(one_project(agents={"qa": None})).project(CID)
    assert view is not None and view.agents["qa"].role == PRESETS["qa"][0]


def test_unknown_agent_lookup_is_none() -> None:
    view = parse_config(one_project(agents=["pm"])).project(CID)
    assert view is not None and view.agent("designer") is None


# --- errors: file, JSON path and what was expected --------------------------------------


def test_an_unknown_preset_names_its_exact_path() -> None:
    assert problems_of({"projects": {"123": {"directory": "/a", "agents": {"pm": {"preset": "wizard"}}}}}) == [
        "projects.123.agents.pm.preset: unknown preset 'wizard'; expected one of designer, devops, engineer, pm, qa"
        ' (got "wizard")'
    ]


def test_an_unknown_preset_in_a_list_names_its_index() -> None:
    assert problems_of(one_project(agents=["pm", "wizard"])) == [
        f"projects.{CID}.agents[1]: unknown preset 'wizard'; expected one of designer, devops, engineer, pm, qa"
        ' (got "wizard")'
    ]


def test_a_custom_agent_needs_role_and_prompt() -> None:
    assert problems_of(one_project(agents={"qa2": {"role": "QA"}})) == [
        f"projects.{CID}.agents.qa2: expected a 'preset', or both 'role' and 'prompt' for a custom agent"
        " (got an object)"
    ]


def test_agents_of_the_wrong_shape_get_one_problem_not_one_per_union_member() -> None:
    assert problems_of(one_project(agents="pm")) == [
        f'projects.{CID}.agents: expected a list of preset names or an object of named agents (got "pm")'
    ]
    assert problems_of(one_project(agents={"pm": 5})) == [f"projects.{CID}.agents.pm: expected an object (got 5)"]


def test_agent_names_that_cannot_be_mentioned_are_refused() -> None:
    (problem,) = problems_of(one_project(agents={"big boss": {"preset": "pm"}}))
    assert problem.startswith(f"projects.{CID}.agents.big boss: agent name 'big boss' may only use")


def test_agent_names_differing_only_in_case_clash() -> None:
    (problem,) = problems_of(one_project(agents={"PM": {"preset": "pm"}, "pm": None}))
    assert "agent names are case-insensitive: 'PM' and 'pm' clash" in problem


def test_an_empty_agent_that_is_not_a_preset_is_refused() -> None:
    (problem,) = problems_of(one_project(agents={"wiz": None}))
    assert problem.startswith(f"projects.{CID}.agents: agent 'wiz' is empty and is not a preset name")


def test_a_missing_directory_is_reported_without_the_input() -> None:
    assert problems_of({"projects": {CID: {"name": "x"}}}) == [f"projects.{CID}.directory: required but missing"]


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ({"httpPort": "abc"}, 'defaults.httpPort: expected a valid integer or false (got "abc")'),
        ({"httpPort": True}, "defaults.httpPort: expected a port number or false (got true)"),
        ({"httpPort": 70000}, "defaults.httpPort: expected a port number between 0 and 65535 (got 70000)"),
        ({"idleTimeoutMs": True}, "defaults.idleTimeoutMs: expected a valid integer (got true)"),
        ({"idleTimeoutMs": "100"}, 'defaults.idleTimeoutMs: expected a valid integer (got "100")'),
        ({"maxConcurrentSessions": 0}, "defaults.maxConcurrentSessions: expected greater than or equal to 1 (got 0)"),
        ({"logLevel": "warning"}, "defaults.logLevel: expected 'debug', 'info', 'warn' or 'error' (got \"warning\")"),
        ({"persistence": "screen"}, "defaults.persistence: expected 'tmux' or 'direct' (got \"screen\")"),
        ({"claudeArgs": ["--a", 1]}, "defaults.claudeArgs[1]: expected a valid string (got 1)"),
        ({"allowedTools": "Read"}, 'defaults.allowedTools: expected an array (got "Read")'),
    ],
)
def test_bad_defaults_name_the_field_and_what_was_expected(defaults: dict[str, Any], expected: str) -> None:
    assert problems_of({"defaults": defaults}) == [expected]


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"defaults": {"idleTimeoutMs": "x", "logLevel": 3}, "projects": {CID: {}}})
    assert [p.split(":")[0] for p in problems] == [
        "defaults.idleTimeoutMs",
        "defaults.logLevel",
        f"projects.{CID}.directory",
    ]


def test_a_non_object_section_is_named() -> None:
    assert problems_of({"defaults": []}) == ["defaults: expected an object (got [])"]
    assert problems_of({"projects": {CID: "x"}}) == [f'projects.{CID}: expected an object (got "x")']


def test_a_top_level_that_is_not_an_object_is_refused() -> None:
    assert problems_of([1, 2]) == ["(top level): expected a JSON object with 'defaults' and 'projects'"]


def test_long_bad_values_are_shortened_in_messages() -> None:
    (problem,) = problems_of({"defaults": {"idleTimeoutMs": "x" * 500}})
    assert problem.endswith("...)") and len(problem) < 140


def test_the_error_message_names_the_file_and_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"defaults": {"httpPort": True, "logLevel": "loud"}}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: 2 problems:\n")
    assert "\n  defaults.httpPort: expected a port number or false (got true)" in message
    assert caught.value.path == path


def test_a_single_problem_fits_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"projects": {"1": {}}}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.json: projects\.1\.directory: required but missing$"):
        load_config(path)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "defaults": {,}\n}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2 column 16: invalid JSON"):
        load_config(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.json")


def test_a_directory_instead_of_a_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_json_path_drops_pydantic_tags_it_has_never_seen() -> None:
    data = {"projects": {"7": {"agents": {"pm": {"preset": "x"}}}}}
    loc = ("projects", "7", "agents", "some-new-tag[whatever]", "pm", "Model", "preset")
    assert _json_path(loc, data) == "projects.7.agents.pm.preset"
    assert _json_path(("defaults", "claudeArgs", "list[str]", 2), {"defaults": {"claudeArgs": [0, 1, 2]}}) == (
        "defaults.claudeArgs[2]"
    )
    assert _json_path((), {}) == "(top level)"


def test_json_path_keeps_a_missing_key_only_when_the_error_says_missing() -> None:
    data = {"projects": {"7": {}}}
    assert _json_path(("projects", "7", "directory"), data, missing=True) == "projects.7.directory"
    assert _json_path(("projects", "7", "directory"), data) == "projects.7"


# --- warnings -------------------------------------------------------------------------


def test_unknown_keys_are_logged_with_their_json_path(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    data = {
        "defaults": {"idleTimeoutMinutes": 5, "colour": "red"},
        "extra": 1,
        "projects": {CID: {"directory": "/a", "notes": "x", "agents": {"pm": {"preset": "pm", "mood": "calm"}}}},
    }
    with caplog.at_level(logging.WARNING, logger="mpg_tui.config"):
        parse_config(data, tmp_path / "config.json")
    lines = [r.getMessage() for r in caplog.records]
    where = str(tmp_path / "config.json")
    assert f"{where}: unknown key extra (ignored)" in lines
    assert f"{where}: unknown key defaults.colour (ignored)" in lines
    assert f"{where}: unknown key projects.{CID}.notes (ignored)" in lines
    assert f"{where}: unknown key projects.{CID}.agents.pm.mood (ignored)" in lines
    assert any("defaults.idleTimeoutMinutes (ignored; MPG reads idleTimeoutMs" in line for line in lines)


def test_a_channel_key_that_is_not_a_snowflake_is_a_warning_not_an_error() -> None:
    config = parse_config({"projects": {"DISCORD_CHANNEL_ID": {"directory": "/a"}}})
    assert "projects.DISCORD_CHANNEL_ID: 'DISCORD_CHANNEL_ID' is not a Discord channel ID (17-20 digits)" in (
        config_warnings(config)
    )


def test_a_clean_config_has_no_warnings() -> None:
    assert config_warnings(parse_config(one_project(agents=["pm"]))) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12345678901234567", True), ("12345678901234567890", True), ("1234567890123456", False), ("12a", False)],
)
def test_snowflakes_are_17_to_20_digits(value: str, expected: bool) -> None:
    assert is_snowflake(value) is expected


# --- directories ----------------------------------------------------------------------


def test_a_home_relative_directory_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    view = parse_config(one_project(directory="~/code/app/")).project(CID)
    assert view is not None and view.directory == str(tmp_path / "code" / "app")


def test_a_relative_directory_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "profiles" / "dev"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(one_project(directory="../../work/app")), encoding="utf-8")
    view = load_config(folder / "config.json").project(CID)
    assert view is not None and view.directory == str(tmp_path / "work" / "app")


def test_a_missing_directory_is_not_a_load_error(tmp_path: Path) -> None:
    view = parse_config(one_project(directory=str(tmp_path / "absent"))).project(CID)
    assert view is not None and view.directory == str(tmp_path / "absent")


def test_a_blank_directory_is_refused() -> None:
    assert problems_of(one_project(directory="  ")) == [
        f'projects.{CID}.directory: expected a directory path (got "  ")'
    ]


# --- environment settings -------------------------------------------------------------


def test_env_settings_never_show_secrets_in_their_repr() -> None:
    settings = EnvSettings.model_validate({"DISCORD_BOT_TOKEN": "tok-123456", "MPG_DASHBOARD_TOKEN": "dash-98765"})
    assert settings.discord_bot_token == "tok-123456"
    assert "tok-123456" not in repr(settings) and "dash-98765" not in repr(settings)


def test_models_are_frozen() -> None:
    config = parse_config(one_project())
    with pytest.raises(ValueError, match="frozen"):
        config.defaults.idle_timeout_ms = 1  # type: ignore[misc]
    assert isinstance(config, GatewayConfig)


# --- passEnv --------------------------------------------------------------------------


def test_pass_env_of_a_project_adds_to_the_defaults() -> None:
    config = parse_config(
        {
            "defaults": {"passEnv": ["GITHUB_TOKEN"]},
            "projects": {
                CID: {"directory": "/srv/app", "passEnv": ["NPM_TOKEN", "GITHUB_TOKEN"]},
                "223456789012345678": {"directory": "/srv/other"},
            },
        }
    )
    assert [view.pass_env for view in config.views()] == [("GITHUB_TOKEN", "NPM_TOKEN"), ("GITHUB_TOKEN",)]


@pytest.mark.parametrize("name", ["DISCORD_BOT_TOKEN", "MPG_DASHBOARD_TOKEN", "discord_bot_token"])
def test_the_gateways_own_secrets_can_never_be_passed(name: str) -> None:
    assert problems_of({"defaults": {"passEnv": [name]}, "projects": {}}) == [
        f'defaults.passEnv[0]: {name} is the gateway\'s own secret and is never passed to claude (got "{name}")'
    ]
    assert problems_of(one_project(passEnv=["OK_NAME", name]))[0].startswith(f"projects.{CID}.passEnv[1]: ")


def test_pass_env_names_must_be_variable_names() -> None:
    (problem,) = problems_of(one_project(passEnv=["A=B"]))
    assert "'A=B' is not an environment variable name" in problem


def test_budgets_and_approver_roles_come_from_defaults_unless_the_project_sets_them() -> None:
    config = parse_config(
        {
            "defaults": {"maxTurnCostUsd": 0.5, "dailyBudgetUsd": 20, "approverRoles": ["lead"]},
            "projects": {
                "100": {"directory": "/srv/a", "maxThreadCostUsd": 2.5, "approverRoles": []},
                "200": {"directory": "/srv/b", "dailyBudgetUsd": 5},
            },
        }
    )
    a, b = config.project("100"), config.project("200")
    assert a is not None and b is not None
    assert (a.budget.max_turn_cost_usd, a.budget.max_thread_cost_usd, a.budget.daily_budget_usd) == (0.5, 2.5, 20.0)
    assert (b.budget.max_thread_cost_usd, b.budget.daily_budget_usd) == (None, 5.0)
    assert (a.approver_roles, b.approver_roles) == ([], ["lead"])


@pytest.mark.parametrize("value", [0, -1, True, "5"])
def test_a_budget_must_be_a_positive_number_of_dollars(value: Any) -> None:
    assert problems_of(one_project(dailyBudgetUsd=value))[0].startswith(f"projects.{CID}.dailyBudgetUsd: expected")
