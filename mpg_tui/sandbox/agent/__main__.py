"""``python -m mpg_tui.sandbox.agent``: what the ``claude`` shim runs."""

import sys

from mpg_tui.sandbox.agent.cli import main

sys.exit(main())
