"""The ``mpg-tui`` subcommands that run without the gateway: init, status, logs, doctor, stop.

Each module exposes ``run(args, io) -> int``; :mod:`mpg_tui.__main__` parses the command
line and imports only the module it needs.
"""
