"""Critical-path marks for ``bench/trace_path.py``, loaded into a traced process through ``PYTHONPATH``.

With ``MPG_TRACE_FILE`` set, functions are wrapped as their modules are imported, and each
call appends ``(time.perf_counter(), label)`` to a list in memory, written to
``$MPG_TRACE_FILE.<pid>`` at exit (or at SIGTERM, for a process that does not handle it).
Always marked: discord.py's gateway receiving an event (``ws.recv``) and starting an HTTP
request (``http.<METHOD>.<last part of the route>``), a socket write (``sock.write``),
``fork_exec`` (``popen``, ``popen:end``) and asyncio seeing a child exit (``exited``).
``MPG_TRACE_WRAP`` adds more, comma-separated: ``module:Class.method=label`` (a label
ending in ``+`` also marks the return, as ``label:end``). A name that is not there stops
the process at start: a renamed function fails the benchmark loudly instead of leaving a
hole in its table.
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import signal
import sys
import time
from typing import Any

_FILE = os.environ.get("MPG_TRACE_FILE")
_BUILT_IN = (
    "discord.gateway:DiscordWebSocket.received_message=ws.recv,"
    "subprocess:Popen._execute_child=popen+,"
    "asyncio.base_subprocess:BaseSubprocessTransport._process_exited=exited,"
    "asyncio.selector_events:_SelectorSocketTransport.write=sock.write"
)


def _install() -> None:
    assert _FILE is not None
    marks: list[tuple[float, str]] = []
    now = time.perf_counter

    def dump() -> None:
        if marks:
            with open(f"{_FILE}.{os.getpid()}", "w", encoding="utf-8") as out:
                out.writelines(f"{t:.7f} {label}\n" for t, label in marks)
            marks.clear()

    def on_sigterm(signum: int, frame: object) -> None:
        dump()
        os._exit(128 + signum)

    atexit.register(dump)
    signal.signal(signal.SIGTERM, on_sigterm)  # replaced by the loop's handler in a gateway

    def wrapped(function: Any, label: str, end: bool) -> Any:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def marked_async(*args: Any, **kwargs: Any) -> Any:
                marks.append((now(), label))
                try:
                    return await function(*args, **kwargs)
                finally:
                    if end:
                        marks.append((now(), label + ":end"))

            return marked_async

        @functools.wraps(function)
        def marked(*args: Any, **kwargs: Any) -> Any:
            marks.append((now(), label))
            try:
                return function(*args, **kwargs)
            finally:
                if end:
                    marks.append((now(), label + ":end"))

        return marked

    def http_request(function: Any) -> Any:
        @functools.wraps(function)
        async def marked(self: Any, route: Any, **kwargs: Any) -> Any:
            marks.append((now(), f"http.{route.method}.{route.path.rsplit('/', 1)[-1]}"))
            return await function(self, route, **kwargs)

        return marked

    wanted: dict[str, list[tuple[str, str, bool]]] = {"discord.http": []}
    spec = _BUILT_IN + "," + os.environ.get("MPG_TRACE_WRAP", "")
    for item in filter(None, (part.strip() for part in spec.split(","))):
        target, _, label = item.partition("=")
        module, _, attr = target.partition(":")
        end = label.endswith("+")
        wanted.setdefault(module, []).append((attr, label.rstrip("+"), end))

    def patch(name: str, module: Any) -> None:
        if name == "discord.http":
            client = module.HTTPClient
            client.request = http_request(client.request)
        for attr, label, end in wanted[name]:
            owner_name, _, function_name = attr.rpartition(".")
            owner = getattr(module, owner_name) if owner_name else module
            setattr(owner, function_name, wrapped(getattr(owner, function_name), label, end))

    class Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name not in wanted:
                return None
            found = importlib.machinery.PathFinder.find_spec(name, path)
            if found is None or found.loader is None:
                return None
            exec_module = found.loader.exec_module

            def exec_and_patch(module: Any) -> None:
                exec_module(module)
                patch(name, module)

            found.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
            return found

    for name in list(wanted):
        if name in sys.modules:
            patch(name, sys.modules[name])
            del wanted[name]
    sys.meta_path.insert(0, Hook())


if _FILE:
    _install()
