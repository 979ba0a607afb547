"""One error hierarchy for the whole system.

Every error a user can cause is a :class:`DovetailError`. The API turns it into
``{"error": {"code", "message", "fields"}}`` with ``http_status``; the CLI into one
line and a non-zero exit. Plugins subclass these in their own ``exceptions.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DovetailError(Exception):
    """Base class: an expected error with a message meant for people."""

    http_status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class ValidationError(DovetailError):
    http_status = 422
    code = "validation_error"


class NotFound(DovetailError):
    http_status = 404
    code = "not_found"


class PermissionDenied(DovetailError):
    http_status = 403
    code = "forbidden"


class Unauthorized(DovetailError):
    http_status = 401
    code = "unauthorized"


class Conflict(DovetailError):
    http_status = 409
    code = "conflict"


class TooManyRequests(DovetailError):
    http_status = 429
    code = "too_many_requests"


class PluginError(DovetailError):
    """A plugin cannot be loaded: names the plugin, the problem and what to do."""

    code = "plugin_error"

    def __init__(self, plugin: str, problem: str, hint: str = "") -> None:
        text = f"plugin '{plugin}': {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
        self.plugin = plugin
        self.problem = problem
        self.hint = hint


@dataclass(frozen=True)
class ConfigIssue:
    """One mistake in a config file, located to the character."""

    file: str
    line: int
    column: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"


class ConfigError(DovetailError):
    """One or more config mistakes; ``str()`` lists every one as file:line:column."""

    code = "config_error"

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))
