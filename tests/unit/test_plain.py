"""``plain`` gives what ``dataclasses.asdict`` gives, for the dataclasses the gateway serializes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mpg_tui.core.api import ChainHop, HandoffChain, SessionInfo, ThreadCounts
from mpg_tui.core.events import RunFinished
from mpg_tui.core.plain import plain
from mpg_tui.core.ports import Attachment, InboundMessage

SAMPLES: list[Any] = [
    SessionInfo(
        key="1:pm",
        project_key="p",
        thread_id="1",
        agent="pm",
        cwd="/srv/p",
        session_id="abc",
        state="running",
        queue_depth=2,
        last_activity=1.5,
        runner="direct",
        progress=["Read a.py", "Bash pytest"],
        attach_command=["tmux", "attach"],
    ),
    HandoffChain(
        "1", "p", [ChainHop("pm", "done", 1.0, 20, 0.1), ChainHop("engineer", "running", 2.0)], 2, 5, "running"
    ),
    InboundMessage(
        id="9",
        channel_id="1",
        author_id="7",
        author_name="ann",
        content="hi",
        role_ids=("3", "4"),
        attachments=(Attachment("http://x/a.txt", "a.txt", 10, None),),
    ),
    RunFinished(
        at=3.0, key="1", project_key="p", thread_id="1", agent=None, ok=True, session_id="s", reply_preview="ok"
    ),
    ThreadCounts(),
    Attachment("http://x/b.png", "b.png", 3, "image/png"),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_plain_equals_asdict(value: Any) -> None:
    assert plain(value) == dataclasses.asdict(value)


def test_plain_converts_dataclasses_inside_containers() -> None:
    value = {"nested": [ThreadCounts(running=1), (1, "x", None)]}
    assert plain(value) == {"nested": [{"waiting": 0, "running": 1, "answered": 0, "told": 0}, (1, "x", None)]}


def test_plain_copies_containers() -> None:
    info = SAMPLES[0]
    data = plain(info)
    data["progress"].append("changed")
    assert info.progress == ["Read a.py", "Bash pytest"]


def test_event_to_dict_names_its_kind_and_leaves_class_variables_out() -> None:
    event = SAMPLES[3]
    data = event.to_dict()
    assert data["kind"] == "run_finished"
    assert set(data) == {f.name for f in dataclasses.fields(event)} | {"kind"}
