"""The HTTP dashboard sidecar: a web page, a JSON API, live events and Prometheus metrics.

It reads the gateway only through :class:`~mpg_tui.core.api.CoreAPI`; see
:mod:`mpg_tui.dashboard.server` for the routes and the safety rules.
"""

from mpg_tui.dashboard.server import Dashboard, DashboardError

__all__ = ["Dashboard", "DashboardError"]
