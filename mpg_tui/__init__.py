"""mpg-tui: route Discord channels to Claude Code sessions, with a terminal cockpit."""

# Read by the build (tool.hatch.version) and at run time without importlib.metadata,
# which costs ~40 ms on every `mpg-tui --version`.
__version__ = "0.1.0"
