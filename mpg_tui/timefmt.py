"""The one spelling of durations and ages, for the gateway's messages, the CLI and the faces.

The dashboard's script mirrors :func:`format_duration` (``static/app.js``).
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
