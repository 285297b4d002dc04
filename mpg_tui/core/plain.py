"""Dataclasses as plain data (dicts, lists, scalars) for JSON, without ``dataclasses.asdict``'s cost.

``asdict`` deep-copies every leaf and looks up a dataclass's fields on every call: 40 to
65 µs for one session or event, several times over for each message the gateway handles
(the control journal, the inbound journal, the run registry). The values these
dataclasses hold are immutable scalars or containers of them, so there is nothing to copy;
:func:`plain` rebuilds the containers and reads each class's field names once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

_SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def plain(value: Any) -> Any:
    """``value`` with every dataclass instance in it turned into a dict of its fields, as ``asdict`` would.

    Lists, tuples and dicts are rebuilt (tuples stay tuples); anything else is returned as
    it is (``json.dumps``'s ``default`` decides what becomes of it).
    """
    cls = type(value)
    if cls in _SCALARS:
        return value
    names = _FIELDS.get(cls)
    if names is not None:
        return {name: plain(getattr(value, name)) for name in names}
    if cls is list:
        return [plain(item) for item in value]
    if cls is dict:
        return {key: plain(item) for key, item in value.items()}
    if cls is tuple:
        return tuple(plain(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _FIELDS[cls] = tuple(field.name for field in dataclasses.fields(value))
        return plain(value)
    return value


def plain_dict(value: Any) -> dict[str, Any]:
    """A dataclass instance as :func:`plain` gives it: a dict of its fields."""
    data = plain(value)
    if not isinstance(data, dict):
        raise TypeError(f"not a dataclass instance: {type(value).__name__}")
    return data
