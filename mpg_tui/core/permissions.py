"""The core's permission port: what a run asks a person, and what it is told.

Claude asks before a tool call its allow/deny lists do not settle, when it has a question
for the user (``AskUserQuestion``) and when it wants to leave plan mode (``ExitPlanMode``).
A runner turns that into a :class:`PermissionRequest` and awaits the
:data:`AskPermission` callable of the run's :class:`PermissionRelay`; the answer is a
:class:`PermissionDecision`, which :meth:`PermissionDecision.cli_response` turns back into
the JSON the CLI expects (the same for its stdio control protocol and its MCP permission
tool).

While a run waits for a person its own timeout does not count: the relay's
:class:`HumanWaits` is held for as long as a request is pending, and a runner times its run
with :class:`~mpg_tui.core.deadline.RunDeadline`, which stops while the waits are held.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PermissionKind = Literal["tool", "question", "plan"]
Outcome = Literal["allow", "allow_session", "deny"]

SUMMARY_CHARS = 600
"""The longest summary of a tool call (the command, or the file and a diff summary)."""
NO_TOOL_USE_ID = "-"
"""What the permission tool sends when claude gave no tool-use ID (arguments are never empty)."""
QUESTION_TOOL = "AskUserQuestion"
PLAN_TOOL = "ExitPlanMode"


@dataclass(frozen=True)
class QuestionOption:
    label: str
    description: str = ""


@dataclass(frozen=True)
class Question:
    text: str
    header: str = ""
    options: tuple[QuestionOption, ...] = ()
    multi_select: bool = False


@dataclass(frozen=True)
class PermissionRequest:
    """One thing claude wants a person to settle."""

    kind: PermissionKind
    tool_name: str
    input: Mapping[str, Any]
    """The tool's input as claude sent it (echoed back on allow)."""
    summary: str
    """A short, safe description: the command, or the file and a short diff summary."""
    tool_use_id: str | None = None
    questions: tuple[Question, ...] = ()
    plan: str = ""
    suggestions: tuple[Mapping[str, Any], ...] = ()
    """The CLI's ``permission_suggestions`` (stdio only); only ``addRules`` is ever used."""

    @classmethod
    def from_tool_call(
        cls,
        tool_name: str,
        tool_input: Mapping[str, Any],
        tool_use_id: str | None = None,
        suggestions: tuple[Mapping[str, Any], ...] = (),
    ) -> PermissionRequest:
        if tool_name == QUESTION_TOOL:
            questions = _questions(tool_input.get("questions"))
            summary = " / ".join(q.text for q in questions) or "a question"
            return cls("question", tool_name, tool_input, cut(summary), tool_use_id, questions=questions)
        if tool_name == PLAN_TOOL:
            plan = tool_input.get("plan")
            plan_text = plan if isinstance(plan, str) else ""
            return cls("plan", tool_name, tool_input, cut(plan_text or "(no plan text)"), tool_use_id, plan=plan_text)
        summary = summarize(tool_name, tool_input)
        return cls("tool", tool_name, tool_input, summary, tool_use_id, suggestions=suggestions)

    def session_rule(self) -> tuple[str, str | None]:
        """What "allow for this session" allows: the tool, and the exact command for Bash."""
        if self.tool_name == "Bash":
            command = self.input.get("command")
            return self.tool_name, command if isinstance(command, str) else None
        return self.tool_name, None


@dataclass(frozen=True)
class PermissionDecision:
    """How a request was settled, and by whom (a display name, for the thread and the audit)."""

    outcome: Outcome
    message: str = ""
    """For a denial: what claude is told."""
    answers: Mapping[str, str] = field(default_factory=dict)
    """For a question: the chosen label (or free text) by question text."""
    decided_by: str = ""

    @property
    def allowed(self) -> bool:
        return self.outcome != "deny"

    def cli_response(self, request: PermissionRequest) -> dict[str, Any]:
        """The decision as claude's permission prompt wants it (stdio ``response`` or MCP text)."""
        if not self.allowed:
            return {"behavior": "deny", "message": self.message or "Denied."}
        updated = dict(request.input)
        if request.kind == "question":
            updated["answers"] = dict(self.answers)
        response: dict[str, Any] = {"behavior": "allow", "updatedInput": updated}
        if self.outcome == "allow_session":
            response["updatedPermissions"] = [session_rules_update(request)]
        return response


AskPermission = Callable[[PermissionRequest], Awaitable[PermissionDecision]]


class HumanWaits:
    """How many requests of one run are waiting for a person, told to whoever listens.

    A run's deadline listens: it stops while anything is pending and goes on from where it
    stopped once nothing is.
    """

    def __init__(self) -> None:
        self._pending = 0
        self._listeners: list[Callable[[bool], None]] = []

    @property
    def waiting(self) -> bool:
        return self._pending > 0

    def listen(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        """Call ``listener(True)`` when waiting starts and ``listener(False)`` when it ends."""
        self._listeners.append(listener)

        def forget() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return forget

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self._pending += 1
        if self._pending == 1:
            self._tell(True)
        try:
            yield
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._tell(False)

    def _tell(self, waiting: bool) -> None:
        for listener in list(self._listeners):
            listener(waiting)


@dataclass(frozen=True)
class PermissionRelay:
    """What a run needs to ask a person: set on a run's request when approvals are relayed.

    A runner that holds claude's pipes answers its ``can_use_tool`` requests with
    :attr:`ask`; a run whose pipes the gateway does not hold gets the MCP permission tool,
    which reaches the gateway over the control socket with :attr:`token`.
    """

    ask: AskPermission
    token: str
    """Names the run's session, thread and requester to the gateway; verified there."""
    timeout_s: float
    """How long a request waits for a person before the gateway denies it."""
    waits: HumanWaits = field(default_factory=HumanWaits)


def session_rules_update(request: PermissionRequest) -> dict[str, Any]:
    """An ``addRules`` update with destination ``session``: the CLI's own suggestion when it
    made one (never its ``setMode`` or settings-file suggestions), else a rule built here."""
    for suggestion in request.suggestions:
        if suggestion.get("type") == "addRules" and isinstance(suggestion.get("rules"), list):
            return {**suggestion, "behavior": "allow", "destination": "session"}
    tool, content = request.session_rule()
    rule: dict[str, str] = {"toolName": tool}
    if content is not None:
        rule["ruleContent"] = content
    return {"type": "addRules", "rules": [rule], "behavior": "allow", "destination": "session"}


def cut(text: str, limit: int = SUMMARY_CHARS) -> str:
    """``text`` no longer than ``limit`` characters, marked when it was cut."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _lines(value: Any) -> int:
    return len(value.splitlines()) if isinstance(value, str) else 0


def summarize(tool_name: str, tool_input: Mapping[str, Any]) -> str:
    """A short description of a tool call for a person to judge."""
    path = tool_input.get("file_path") or tool_input.get("notebook_path") or tool_input.get("path")
    if tool_name == "Bash" and isinstance(tool_input.get("command"), str):
        return cut(str(tool_input["command"]))
    if tool_name == "Edit" and isinstance(path, str):
        old, new = _lines(tool_input.get("old_string")), _lines(tool_input.get("new_string"))
        return cut(f"{path}: -{old} +{new} lines")
    if tool_name == "MultiEdit" and isinstance(path, str):
        edits = tool_input.get("edits")
        count = len(edits) if isinstance(edits, list) else 0
        return cut(f"{path}: {count} edits")
    if tool_name == "Write" and isinstance(path, str):
        return cut(f"{path}: {_lines(tool_input.get('content'))} lines")
    if isinstance(path, str):
        return cut(path)
    if isinstance(tool_input.get("url"), str):
        return cut(str(tool_input["url"]))
    return cut(json.dumps(dict(tool_input), ensure_ascii=False, default=str))


def _questions(raw: Any) -> tuple[Question, ...]:
    if not isinstance(raw, list):
        return ()
    found: list[Question] = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("question"), str):
            continue
        options = tuple(
            QuestionOption(str(o["label"]), str(o.get("description") or ""))
            for o in item.get("options") or []
            if isinstance(o, Mapping) and isinstance(o.get("label"), str)
        )
        found.append(
            Question(str(item["question"]), str(item.get("header") or ""), options, item.get("multiSelect") is True)
        )
    return tuple(found)
