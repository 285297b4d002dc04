import pytest

from mpg_tui.config import ProjectView, parse_config
from mpg_tui.core.access import allowed, check, denial_text
from mpg_tui.core.ports import InboundMessage


def project(roles: list[str] | None) -> ProjectView:
    raw: dict[str, object] = {"name": "Alpha", "directory": "/srv/alpha"}
    if roles is not None:
        raw["allowedRoles"] = roles
    view = parse_config({"projects": {"100": raw}}).project("100")
    assert view is not None
    return view


@pytest.mark.parametrize(
    ("roles", "role_ids", "role_names", "expected"),
    [
        (None, (), (), True),
        ([], (), (), True),
        (["Dev"], (), ("Dev",), True),
        (["Dev"], (), ("Ops",), False),
        (["Dev"], (), (), False),
        (["555"], ("555",), ("Whatever",), True),
        (["555"], ("556",), ("555x",), False),
        (["Dev", "Ops"], (), ("Ops",), True),
        (["Dev"], (), ("dev",), False),  # names match exactly, as in MPG
        (["Dev"], ("Dev",), (), True),  # an entry may match either an ID or a name
    ],
)
def test_allowed_roles_match_by_name_or_id(
    roles: list[str] | None, role_ids: tuple[str, ...], role_names: tuple[str, ...], expected: bool
) -> None:
    assert allowed(project(roles), role_ids, role_names) is expected


def test_denial_text_lists_required_roles() -> None:
    assert denial_text(project(["Dev", "Ops"])) == (
        "You don't have permission to use this project. Required role: Dev, Ops"
    )


def test_check_returns_the_reply_only_when_denied() -> None:
    gated = project(["Dev"])
    member = InboundMessage(
        id="1", channel_id="100", author_id="u", author_name="ann", content="hi", role_names=("Dev",)
    )
    stranger = InboundMessage(id="2", channel_id="100", author_id="v", author_name="bob", content="hi")
    assert check(gated, member) is None
    assert check(gated, stranger) == denial_text(gated)
