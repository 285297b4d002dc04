"""The Textual cockpit: panes over the core's events, and the command API behind its keys.

Import :mod:`mpg_tui.tui.app` for :func:`~mpg_tui.tui.app.make_app`; this package itself
stays import-light so the pure helpers (formatting, model, digest) need no Textual.
"""
