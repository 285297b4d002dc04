"""The page's script spells durations and ages exactly as :mod:`mpg_tui.timefmt` does.

The server renders the first page with timefmt and the script re-renders it live; a spelling
that differs would make values change style on the first update. Run with node (which the
contract tests' claude CLI needs anyway).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources

import pytest

from mpg_tui.timefmt import format_ago, format_duration, format_run_length

SAMPLES = [0, 0.4, 0.999, 1, 4.9, 5, 12.34, 59.99, 60, 61, 125, 3599, 3600, 3661, 7300, 86_399, 86_400, 90_000, 1e6]
MIRRORS = {"formatDuration": format_duration, "formatAgo": format_ago, "formatRunLength": format_run_length}


def script_functions() -> str:
    source = resources.files("mpg_tui.dashboard").joinpath("static", "app.js").read_text(encoding="utf-8")
    parts = [re.search(r"const pad2 = .*?;\n", source)]
    parts += [re.search(rf"  function {name}\(seconds\) {{.*?\n  }}\n", source, re.S) for name in MIRRORS]
    assert all(parts), "app.js no longer defines the mirrored formatters"
    return "".join(m[0] for m in parts if m)


def test_the_scripts_durations_and_ages_match_timefmt() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    program = script_functions() + (
        f"const samples = {json.dumps(SAMPLES)};\n"
        f"const out = {{}};\n"
        f"for (const name of {json.dumps(list(MIRRORS))}) out[name] = samples.map((s) => eval(name)(s));\n"
        "console.log(JSON.stringify(out));\n"
    )
    run = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=60, check=True)
    spelt = json.loads(run.stdout)
    for name, python in MIRRORS.items():
        assert spelt[name] == [python(s) for s in SAMPLES], name
