"""The demo's personas (``MPG_AGENT_MODE=demo``): deterministic replies that look like work.

A Product Manager plans and hands off to @engineer (and approves work handed back); a
Software Engineer shows Read/Grep/Edit/Bash(git) progress and hands back with
``HANDOFF @pm: ready for review``; when its task mentions tests it also runs
:data:`TEST_COMMAND`, which the default allowlist does not cover, so it asks first (a
denial is said in the reply, and nothing is handed back); any other role, or none, answers
in one paragraph.
"""

from __future__ import annotations

import os
import re
from typing import Protocol

from mpg_tui.sandbox.agent.directives import first_line
from mpg_tui.sandbox.agent.output import Emitter
from mpg_tui.sandbox.agent.permissions import Verdict

_TESTS = re.compile(r"\btests?\b", re.IGNORECASE)
TEST_COMMAND = "python3 -m pytest -q"
"""What the demo's engineer runs when a task mentions tests (outside the default allowlist: it asks)."""


class Pause(Protocol):
    def __call__(self, seconds: float | None, *, during_tool: bool) -> None: ...


class Bash(Protocol):
    def __call__(self, out: Emitter, command: str, output: str, *, pause: float = 0.0) -> tuple[str, Verdict]: ...


class DemoPersona:
    """One turn's persona: who it is (``role``), what it was asked (``user``), where (``cwd``)."""

    def __init__(self, role: str | None, user: str, cwd: str, *, pace: float, pause: Pause, bash: Bash) -> None:
        """``pace`` multiplies the pauses (0: none); ``pause`` and ``bash`` are the turn's own."""
        self.role = role
        self.user = user
        self.cwd = cwd
        self.pace = pace
        self.pause = pause
        self.bash = bash

    def reply(self, out: Emitter) -> str:
        """The persona's reply, after the progress (and, for tests, the permission request) it shows."""
        role = (self.role or "").lower()
        task = first_line(self.user) or "the request"
        if "product manager" in role:
            # Only the new message counts: the history may hold an earlier round's hand-back.
            if "handoff @pm" in self.user.lower():
                return (
                    "Reviewed the engineer's change against the plan: it covers the request, the diff is small "
                    "and the tests pass. Approved — ready to merge."
                )
            return (
                f'Plan for "{task}":\n'
                "1. Pin down the expected behaviour and the edge cases.\n"
                "2. Implement it in small steps, with a test for each.\n"
                "3. Review the diff and the test run before merging.\n\n"
                f"HANDOFF @engineer: {task}"
            )
        if "engineer" in role:
            return self._engineer(out, self._handed_task() or task)
        if role:
            return (
                f'As the {self.role}, my take on "{task}": the request is clear enough to act on. I would '
                "start with the smallest change that shows the idea working, check it with the people who asked, "
                "and only then widen it; the risks are mostly in the edges, so those get written down first."
            )
        return (
            f'Here is how I would approach "{task}": read the code around it first, make the smallest change '
            "that does the job, cover it with a test, and run the suite before calling it done. If anything in "
            "the request is ambiguous, say which reading you picked so it is easy to correct."
        )

    def _handed_task(self) -> str | None:
        found = re.findall(r"^HANDOFF @engineer:\s*(.+)$", self.user, re.IGNORECASE | re.MULTILINE)
        return str(found[-1]).strip() if found else None

    def _engineer(self, out: Emitter, task: str) -> str:
        source, test = project_files(self.cwd)
        word = next((w for w in re.findall(r"[A-Za-z]{4,}", task)), "TODO")
        steps = [
            ("Read", source, 0.4),
            ("Grep", word, 0.3),
            ("Read", test, 0.5),
            ("Edit", source, 0.6),
            ("Edit", test, 0.4),
            ("Bash", "git diff --stat", 0.3),
        ]
        for name, target, pause in steps:
            out.tool(name, target)
            if self.pace > 0:
                self.pause(pause * self.pace, during_tool=True)
        added = 12 + len(task) % 29
        changed = (
            f"- `{source}`: implemented the change.\n"
            f"- `{test}`: added a test that covers it.\n\n"
            f"2 files changed, {added} insertions(+), 3 deletions(-)."
        )
        ran = ""
        if _TESTS.search(task):
            command, outcome, passed = self._run_tests(out)
            if not passed:
                return (
                    f"I did not run the tests (`{command}`): {outcome}\n\n"
                    f'So far, for "{task}":\n{changed}\n\nTell me how you want them run and I will carry on.'
                )
            ran = f"\n\nRan the tests (`{command}`): {outcome}."
        return f"Done: {task}.\n\n{changed}{ran}\n\nHANDOFF @pm: ready for review"

    def _run_tests(self, out: Emitter) -> tuple[str, str, bool]:
        """Ask to run the test suite, as a model would; the command that ran (or was refused),
        what came of it, and whether it ran."""
        outcome = "14 passed in 0.42s"
        command, verdict = self.bash(out, TEST_COMMAND, f"..............\n{outcome}", pause=0.8)
        return (command, outcome, True) if verdict.allowed else (command, verdict.message, False)


def project_files(cwd: str) -> tuple[str, str]:
    """A plausible source file and test file of the project, chosen deterministically."""
    try:
        names = sorted(os.listdir(cwd))
    except OSError:
        names = []
    code = [n for n in names if n.endswith((".py", ".ts", ".js", ".go", ".rs")) and not n.startswith("test")]
    source = code[0] if code else "src/app.py"
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return source, f"tests/test_{stem}.py"
