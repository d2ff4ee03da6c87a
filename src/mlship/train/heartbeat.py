"""The heartbeat of a running run: proof, renewed from a background thread, that its process lives.

A killed process stops beating, which is how ``mlship runs list`` tells an abandoned run from a
long one (:mod:`mlship.store.liveness`). The beat runs in a daemon thread so that a long fit in the
main thread does not delay it, and it never stops the run: a renewal that fails (the database
busy, the tracking server restarting) is tried again at the next beat, and the lease allows two
to be missed.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Self

from mlship.store.liveness import HEARTBEAT_SECONDS
from mlship.store.repositories import Runs

log = logging.getLogger(__name__)


class Heartbeat:
    """Renews ``run_id``'s heartbeat every ``interval`` seconds while the block runs."""

    def __init__(self, runs: Runs, run_id: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self.runs = runs
        self.run_id = run_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"mlship-heartbeat-{run_id[:8]}", daemon=True
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.runs.heartbeat(self.run_id):
                    return  # closed by hand: nothing left to renew
            except Exception as exc:  # tried again at the next beat; the run goes on
                log.warning("heartbeat of run %s not renewed: %s", self.run_id[:8], exc)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval)
