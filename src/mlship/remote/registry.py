"""The model registry of a tracking server, with the local registry's methods and results."""

from __future__ import annotations

from typing import Any

from mlship.registry.lifecycle import Change, Registry, Stage
from mlship.remote.client import Client
from mlship.remote.metadata import part
from mlship.store.records import from_record
from mlship.store.tables import ModelEvent, ModelVersion, Note, PromotionRequest


def _change(answer: dict[str, Any]) -> Change:
    return Change(**answer)


class RemoteRegistry(Registry):
    """Every change is made by the token's user; ``user`` arguments are not sent."""

    def __init__(self, client: Client) -> None:  # the base's metadata store is not used
        self.client = client

    def _version(self, name: str, version: int) -> str:
        return f"/models/{part(name)}/versions/{version}"

    def set_stage(
        self, name: str, version: int, stage: Stage, user: str, reason: str | None = None
    ) -> Change:
        body = {"stage": stage, "reason": reason}
        return _change(self.client.post(f"{self._version(name, version)}/stage", body))

    def request_promotion(
        self, name: str, version: int, user: str, reason: str | None = None
    ) -> Change:
        path = f"{self._version(name, version)}/promotion"
        return _change(self.client.post(path, {"reason": reason}))

    def approve(self, name: str, version: int, user: str, note: str | None = None) -> Change:
        path = f"{self._version(name, version)}/approve"
        return _change(self.client.post(path, {"note": note}))

    def reject(self, name: str, version: int, user: str, note: str | None = None) -> Change:
        """Withdraw one's own pending request, or (as a reviewer) reject someone else's."""
        me = self.client.get("/whoami")["user"]
        pending = [r for r in self.requests(name) if r.version == version and r.status == "pending"]
        action = "withdraw" if pending and pending[0].requested_by == me else "reject"
        path = f"{self._version(name, version)}/{action}"
        return _change(self.client.post(path, {"note": note}))

    def rollback(self, name: str, user: str, reason: str | None = None) -> Change:
        return _change(self.client.post(f"/models/{part(name)}/rollback", {"reason": reason}))

    def tag(self, name: str, version: int | None, tags: dict[str, str | None], user: str) -> Change:
        body = {"version": version, "tags": tags}
        return _change(self.client.post(f"/models/{part(name)}/tags", body))

    def describe(self, name: str, version: int | None, text: str, user: str) -> Change:
        body = {"version": version, "text": text}
        return _change(self.client.post(f"/models/{part(name)}/description", body))

    def record_signature(self, name: str, version: int, signature: str, user: str) -> Change:
        """The server signs with its own key, after checking the stored bytes' checksum."""
        return _change(self.client.post(f"{self._version(name, version)}/signature"))

    def set_owner(self, name: str, owner: str, user: str) -> Change:
        return _change(self.client.post(f"/models/{part(name)}/owner", {"owner": owner}))

    def add_note(self, name: str, version: int, body: str, user: str) -> Note:
        found = self.client.post(f"{self._version(name, version)}/notes", {"body": body})
        return from_record(Note, found)

    def version_notes(self, name: str, version: int) -> list[Note]:
        found = self.client.get(f"{self._version(name, version)}/notes")
        return [from_record(Note, r) for r in found]

    def history(self, name: str) -> list[ModelEvent]:
        found = self.client.get(f"/models/{part(name)}/history")
        return [from_record(ModelEvent, r) for r in found]

    def requests(self, name: str) -> list[PromotionRequest]:
        found = self.client.get(f"/models/{part(name)}/requests")
        return [from_record(PromotionRequest, r) for r in found]

    def in_stage(self, name: str, stage: Stage) -> ModelVersion:
        found = self.client.get(f"/models/{part(name)}/stages/{stage}")
        return from_record(ModelVersion, found)
