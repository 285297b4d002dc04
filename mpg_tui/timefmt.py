"""The one place durations and ages are spelt, for the gateway's messages, the CLI and the faces.

Three spellings, each for its own use:

* :func:`format_duration` (``2h 05m``): ages and uptimes in messages, the CLI and the cockpit;
* :func:`format_age` / :func:`format_ago` (``7m``, ``7m ago``): the cockpit's narrow columns;
* :func:`format_run_length` (``12.3s``, ``4m05s``): how long a run took, to a tenth of a second.

The dashboard renders with them and its script mirrors all three (``static/app.js``; a test runs
both and compares).
"""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``12m``, ``2h 05m``, ``3d 04h``; negative reads as ``0s``.

    The one spelling of ages and uptimes across the gateway's messages, the CLI and the cockpit.
    """
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_age(seconds: float) -> str:
    """A compact age in one unit: ``now``, ``42s``, ``7m``, ``3h``, ``2d``."""
    seconds = max(0.0, seconds)
    if seconds < 5:
        return "now"
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def format_ago(seconds: float) -> str:
    """:func:`format_age` for past moments: ``now`` or ``7m ago``."""
    text = format_age(seconds)
    return text if text == "now" else f"{text} ago"


def format_run_length(seconds: float) -> str:
    """How long a run took: ``850ms``, ``12.3s``, ``4m05s``, ``2h07m``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
