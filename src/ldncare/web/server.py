"""Running several uvicorn workers on one listening socket (``ldncare serve --workers N``)."""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


class NoDelayConfig(uvicorn.Config):
    """uvicorn's config, with TCP_NODELAY on the listening socket of a multi-worker server.

    uvicorn makes that socket without a protocol number, so asyncio does not set TCP_NODELAY
    on the connections it accepts (it checks ``proto == IPPROTO_TCP``). A response, written as
    headers and then body, then waited for the client's delayed ACK: 40 ms more per request,
    about 1,100 req/s whatever the route (bench/README.md). Linux copies the option from the
    listening socket to every accepted one. Reported upstream as Kludex/uvicorn#3149 (open
    when this was written); drop this class once uvicorn sets the protocol itself.
    """

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def run_workers(factory: str, workers: int, options: dict[str, Any]) -> None:
    """Serve the app ``factory`` (an import string) from ``workers`` processes until stopped.

    What ``uvicorn.run(factory, factory=True, workers=workers, ...)`` does, with the config
    above.
    """
    config = NoDelayConfig(factory, factory=True, workers=workers, **options)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[config.bind_socket()]).run()
