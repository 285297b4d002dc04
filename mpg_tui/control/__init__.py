"""The control API: how cockpits in other processes (or on other machines) see and drive a gateway.

``protocol`` (the versioned payloads), ``journal`` (the numbered ring of recent events),
``server`` (the socket and HTTP doors), ``client``, ``remote`` (a
:class:`~mpg_tui.core.api.CoreAPI` over a gateway elsewhere) and ``remotes`` (which gateways
a cockpit watches). Nothing here imports Textual.
"""
