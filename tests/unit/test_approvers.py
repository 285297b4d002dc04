"""Who may decide for a thread: the requester, an approver role, the operator; nobody else."""

from __future__ import annotations

import pytest

from mpg_tui.core.approvers import OPERATOR, Member, may_decide, refusal_text
from mpg_tui.core.ports import InboundMessage


@pytest.mark.parametrize(
    ("member", "approver_roles", "expected"),
    [
        (Member("alice"), (), True),  # the requester
        (Member("bob"), (), False),
        (Member("bob", role_names=("lead",)), ("lead",), True),
        (Member("bob", role_ids=("777",)), ("777",), True),
        (Member("bob", role_names=("Lead",)), ("lead",), False),  # names match exactly, as allowedRoles
        (Member("bob", role_names=("developer",)), ("lead",), False),
    ],
)
def test_the_requester_or_an_approver_role_may_decide(
    member: Member, approver_roles: tuple[str, ...], expected: bool
) -> None:
    assert may_decide(member, requester_id="alice", approver_roles=approver_roles) is expected


def test_the_operator_always_may_and_nobody_is_the_requester_of_unowned_work() -> None:
    assert may_decide(OPERATOR, requester_id=None, approver_roles=())
    assert not may_decide(Member("alice"), requester_id=None, approver_roles=())


def test_a_member_is_read_from_the_message_with_their_roles() -> None:
    message = InboundMessage(
        id="1", channel_id="2", author_id="42", author_name="x", content="", role_ids=("9",), role_names=("lead",)
    )
    assert Member.of(message) == Member("42", ("9",), ("lead",))


def test_the_refusal_names_who_may_decide() -> None:
    assert refusal_text(["lead", "admin"], what="continue this thread") == (
        "You can't continue this thread: only the member who asked for this work or a member with the role "
        "admin, lead can (or the operator, from the cockpit or dashboard)."
    )
