"""Settings from the environment (and ``.env`` files): the bot token and a few overrides."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EnvSettings(BaseSettings):
    """Secrets and overrides from the environment (and the resolved ``.env`` files).

    ``EnvSettings()`` reads the process environment; :func:`mpg_tui.locations.load_env`
    builds one from the ``.env`` files too, without exporting anything.
    """

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    discord_bot_token: str | None = Field(None, validation_alias=AliasChoices("DISCORD_BOT_TOKEN"))
    """The bot token. Never logged, never passed to claude."""
    mpg_home: str | None = Field(None, validation_alias=AliasChoices("MPG_HOME"))
    discord_api_base: str | None = Field(None, validation_alias=AliasChoices("MPG_DISCORD_API_BASE"))
    """Overrides ``defaults.discordApiBase``: point the client at a Discord-compatible server."""
    dashboard_token: str | None = Field(None, validation_alias=AliasChoices("MPG_DASHBOARD_TOKEN"))
    """Overrides ``defaults.dashboardToken``."""

    def __repr_args__(self) -> Any:
        # Keep secrets out of reprs that end up in logs and tracebacks.
        for name, value in super().__repr_args__():
            yield name, ("***" if value and name in {"discord_bot_token", "dashboard_token"} else value)


ENV_NAMES = ("DISCORD_BOT_TOKEN", "MPG_HOME", "MPG_DISCORD_API_BASE", "MPG_DASHBOARD_TOKEN")
"""Every variable :class:`EnvSettings` reads."""

SECRET_ENV_NAMES = ("DISCORD_BOT_TOKEN", "MPG_DASHBOARD_TOKEN")
"""The secrets among them: never logged, and never passed on to claude (``passEnv`` refuses them)."""
