"""Which gateways a cockpit watches: ``--connect`` URLs and the cockpit config's ``remotes``.

The cockpit config (``$MPG_HOME/cockpit.json`` unless ``--cockpit-config`` names another)::

    {"remotes": [
        {"name": "prod", "url": "http://127.0.0.1:3101", "tokenFile": "~/.mpg/prod.token"},
        {"name": "laptop", "url": "unix:/run/user/1000/mpg-tui/profiles/default/run/control.sock"}
    ]}

Tokens come from a file (``tokenFile``, or ``--token-file`` for ``--connect``) or from
``MPG_DASHBOARD_TOKEN``, never from the command line, where any user could read them.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from mpg_tui.control.client import Endpoint, default_label

log = logging.getLogger(__name__)

COCKPIT_CONFIG_NAME = "cockpit.json"
TOKEN_ENV = "MPG_DASHBOARD_TOKEN"  # noqa: S105 - the variable's name, not a token


class RemotesError(ValueError):
    """A cockpit config or ``--connect`` option that cannot be used; the message says why."""


class Remote(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)
    name: str | None = Field(None, pattern=r"^[^/\s]{1,40}$")
    """How the cockpit labels this gateway's projects, threads and sessions."""
    url: str
    token_file: str | None = None


class CockpitConfig(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)
    remotes: list[Remote] = Field(default_factory=list)


def load_cockpit_config(path: Path) -> CockpitConfig:
    """The cockpit config at ``path``; an empty one when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CockpitConfig()
    except OSError as exc:
        raise RemotesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return CockpitConfig.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise RemotesError(f"{path}: {exc}") from None


def read_token_file(path: Path) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise RemotesError(f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise RemotesError(f"the token file {path} is empty")
    if mode & 0o077:
        log.warning("%s is readable by other users; it holds a dashboard token (chmod 600 it)", path)
    return token


def parse_connect(option: str) -> tuple[str | None, str]:
    """``NAME=URL`` or ``URL`` -> (name, url)."""
    name, sep, url = option.partition("=")
    if sep and "://" not in name and not name.startswith("unix:"):
        return name, url
    return None, option


def endpoints(
    connect: Sequence[str],
    config: CockpitConfig,
    *,
    token_file: Path | None,
    env: Mapping[str, str],
) -> list[Endpoint]:
    """Every gateway to watch, labelled; labels are only used when there are several."""
    env_token = env.get(TOKEN_ENV) or None
    shared_token = read_token_file(token_file) if token_file is not None else env_token
    found: list[Endpoint] = []
    for option in connect:
        name, url = parse_connect(option)
        found.append(Endpoint(url=url, label=name or default_label(url), token=shared_token))
    for remote in config.remotes:
        token = read_token_file(Path(remote.token_file).expanduser()) if remote.token_file else env_token
        found.append(Endpoint(url=remote.url, label=remote.name or default_label(remote.url), token=token))
    for endpoint in found:
        try:
            endpoint.base_url  # noqa: B018 - validates the URL
        except ValueError as exc:
            raise RemotesError(str(exc)) from None
        if "/" in endpoint.label or not endpoint.label.strip():
            raise RemotesError(f"a gateway's name cannot be empty or hold '/': {endpoint.label!r}")
    labels = [e.label for e in found]
    doubles = sorted({label for label in labels if labels.count(label) > 1})
    if doubles:
        raise RemotesError(f"two gateways are named {', '.join(doubles)}; name them with NAME=URL")
    return found
