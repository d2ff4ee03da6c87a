"""The log store of a tracking server (``server/logparts.py``), used like a local one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mlship.remote.client import Client
from mlship.store.logstore import LogStore, PartRef, check_log, check_part


class RemoteLogStore(LogStore):
    """Parts kept by the server at ``client.url``; each call is one request, and a part goes up
    in one request, which the server stores whole or not at all."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def where(self) -> str:
        return self.client.url

    def location(self, log: str) -> str:
        return f"{self.client.url} ({log})"

    def put(self, log: str, name: str, data: bytes) -> None:
        self.client.put_stream(f"/logs/{check_log(log)}/parts/{check_part(name)}", lambda: [data])

    def parts(self, log: str, since: datetime | None = None) -> list[PartRef]:
        since_ns = None if since is None else int(since.timestamp() * 1e9)
        found = self.client.get(f"/logs/{check_log(log)}/parts", since_ns=since_ns)
        return sorted(PartRef(log, check_part(str(name))) for name in found["parts"])

    def logs(self, under: str) -> list[str]:
        found = self.client.get("/logs", under=check_log(under))
        return [check_log(str(name)) for name in found["logs"]]

    def read(self, part: PartRef) -> bytes:
        return self.client.get_bytes(f"/logs/{check_log(part.log)}/parts/{check_part(part.name)}")

    def delete(self, parts: Sequence[PartRef]) -> None:
        by_log: dict[str, list[str]] = {}
        for part in parts:
            by_log.setdefault(part.log, []).append(check_part(part.name))
        for log, names in by_log.items():
            self.client.post(f"/logs/{check_log(log)}/delete", {"names": names})
