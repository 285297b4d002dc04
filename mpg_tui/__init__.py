"""mpg-tui: route Discord channels to Claude Code sessions, with a terminal cockpit."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mpg-tui")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
