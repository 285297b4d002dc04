"""Discord's error responses, and the one way this package writes JSON over HTTP.

Every error the sandbox returns has Discord's shape (``{"message": ..., "code": ...}``,
plus ``errors`` for invalid form bodies) so discord.py raises the same exception it
would against the real API. JSON goes out with ``Content-Type: application/json``
exactly: with a charset parameter discord.py would treat the body as text.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class ApiError(Exception):
    """An error response in Discord's shape; raised by the model, rendered by the routes."""

    def __init__(
        self,
        status: int,
        message: str,
        code: int = 0,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {message} (code {code})")
        self.status = status
        self.message = message
        self.code = code
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self) -> web.Response:
        return json_response(self.body, self.status, self.headers)


def unauthorized() -> ApiError:
    return ApiError(401, "401: Unauthorized", 0)


def route_not_found() -> ApiError:
    return ApiError(404, "404: Not Found", 0)


def unknown_channel() -> ApiError:
    return ApiError(404, "Unknown Channel", 10003)


def unknown_message() -> ApiError:
    return ApiError(404, "Unknown Message", 10008)


def unknown_member() -> ApiError:
    return ApiError(404, "Unknown Member", 10007)


def unknown_user() -> ApiError:
    return ApiError(404, "Unknown User", 10013)


def unknown_guild() -> ApiError:
    return ApiError(404, "Unknown Guild", 10004)


def missing_permissions() -> ApiError:
    return ApiError(403, "Missing Permissions", 50013)


def empty_message() -> ApiError:
    return ApiError(400, "Cannot send an empty message", 50006)


def not_author() -> ApiError:
    return ApiError(403, "Cannot edit a message authored by another user", 50005)


def thread_exists() -> ApiError:
    return ApiError(400, "A thread has already been created for this message", 160004)


def wrong_channel_type() -> ApiError:
    return ApiError(400, "Cannot execute action on this channel type", 50024)


def thread_locked() -> ApiError:
    return ApiError(403, "Thread is locked", 160005)


def too_large() -> ApiError:
    return ApiError(413, "Request entity too large", 40005)


def invalid_form(field_errors: dict[str, tuple[str, str]]) -> ApiError:
    """A 50035 error; ``field_errors`` maps a dotted path (``embeds.0.description``) to (code, message)."""
    errors: dict[str, Any] = {}
    for dotted, (code, message) in field_errors.items():
        node = errors
        for part in dotted.split("."):
            node = node.setdefault(part, {})
        node["_errors"] = [{"code": code, "message": message}]
    return ApiError(400, "Invalid Form Body", 50035, errors=errors)


def max_length(path: str, limit: int) -> tuple[str, tuple[str, str]]:
    return path, ("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
