"""MPG-compatible ``config.json`` and environment settings.

* :mod:`.models`: the pydantic models of ``config.json`` and their merge rules;
* :mod:`.loading`: reading and validating the file, with errors an operator can act on;
* :mod:`.env`: the bot token and overrides from the environment and ``.env`` files.

The names the rest of the code base uses are importable from here.
"""

from mpg_tui.config.env import ENV_NAMES, SECRET_ENV_NAMES, EnvSettings
from mpg_tui.config.loading import ConfigError, config_warnings, load_config, parse_config
from mpg_tui.config.models import (
    DEFAULT_ALLOWED_TOOLS,
    DEFAULT_CLAUDE_ARGS,
    DEFAULT_MIME_TYPES,
    TOOL_FLAGS,
    Agent,
    AgentSpec,
    BudgetLimits,
    Defaults,
    GatewayConfig,
    Project,
    ProjectView,
    is_snowflake,
    resolve_agents,
)

__all__ = [
    "DEFAULT_ALLOWED_TOOLS",
    "DEFAULT_CLAUDE_ARGS",
    "DEFAULT_MIME_TYPES",
    "ENV_NAMES",
    "SECRET_ENV_NAMES",
    "TOOL_FLAGS",
    "Agent",
    "AgentSpec",
    "BudgetLimits",
    "ConfigError",
    "Defaults",
    "EnvSettings",
    "GatewayConfig",
    "Project",
    "ProjectView",
    "config_warnings",
    "is_snowflake",
    "load_config",
    "parse_config",
    "resolve_agents",
]
