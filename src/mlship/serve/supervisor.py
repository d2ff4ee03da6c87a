"""The parent of ``mlship serve --workers N``: uvicorn's process manager, letting go of the
listening socket when it is told to stop.

The parent opens the socket and every worker accepts on its own copy. On SIGTERM the parent hands
the signal on to the workers, which drain (``serve/drain.py``) and then stop accepting; a copy
still open in the parent would keep the port listening with nobody accepting, so a connection
made then would wait in the kernel's queue and be reset when the parent exits. Closed in the
parent at once, the socket closes with the last worker's copy: later connections are refused
at once, which a client or a load balancer retries elsewhere without waiting.
"""

from __future__ import annotations

import socket

from uvicorn import Config
from uvicorn.supervisors.multiprocess import Multiprocess


class Supervisor(Multiprocess):
    """uvicorn's :class:`Multiprocess` that closes its copy of the sockets on SIGTERM."""

    def handle_term(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().handle_term()


def serve_workers(config: Config) -> None:
    """Run ``config.workers`` worker processes of ``config``'s app on one socket until SIGTERM
    (or SIGINT) and their shutdown."""
    sock: socket.socket = config.bind_socket()
    Supervisor(config, sockets=[sock]).run()
