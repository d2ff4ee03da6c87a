"""The model registry of a tracking server: the :class:`~mlship.store.registry.Registry`
protocol over HTTP.

Every change is made by the token's user and every rule between people (who may approve, who
withdraws and who rejects) is the server's: this class only sends what was asked and reads the
server's answer with the same adapters the server wrote it with.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mlship.remote import registry_api as api
from mlship.remote.client import Client
from mlship.remote.metadata import part
from mlship.store import entities
from mlship.store.entities import ModelEvent, ModelVersion, Note, PromotionRequest, Review
from mlship.store.registry import Change, Stage


class HttpRegistry:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _post(self, path: str, body: BaseModel | None = None) -> Any:
        return self.client.post(path, None if body is None else body.model_dump(mode="json"))

    def _change(self, path: str, body: BaseModel | None = None) -> Change:
        return entities.parse(Change, self._post(path, body))

    @staticmethod
    def _model(name: str) -> str:
        return f"/models/{part(name)}"

    def _version(self, name: str, version: int) -> str:
        return f"{self._model(name)}/versions/{version}"

    def set_stage(self, name: str, version: int, stage: Stage, reason: str | None = None) -> Change:
        body = api.StageMove(stage=stage, reason=reason)
        return self._change(f"{self._version(name, version)}/stage", body)

    def request_promotion(self, name: str, version: int, reason: str | None = None) -> Change:
        body = api.Reason(reason=reason)
        return self._change(f"{self._version(name, version)}/promotion", body)

    def approve(self, name: str, version: int, note: str | None = None) -> Change:
        return self._change(f"{self._version(name, version)}/approve", api.Decision(note=note))

    def reject(self, name: str, version: int, note: str | None = None) -> Change:
        return self._change(f"{self._version(name, version)}/reject", api.Decision(note=note))

    def withdraw(self, name: str, version: int, note: str | None = None) -> Change:
        return self._change(f"{self._version(name, version)}/withdraw", api.Decision(note=note))

    def rollback(self, name: str, reason: str | None = None) -> Change:
        return self._change(f"{self._model(name)}/rollback", api.Reason(reason=reason))

    def tag(self, name: str, version: int | None, tags: dict[str, str | None]) -> Change:
        return self._change(f"{self._model(name)}/tags", api.Tags(version=version, tags=tags))

    def describe(self, name: str, version: int | None, text: str) -> Change:
        body = api.Description(version=version, text=text)
        return self._change(f"{self._model(name)}/description", body)

    def set_owner(self, name: str, owner: str) -> Change:
        return self._change(f"{self._model(name)}/owner", api.Owner(owner=owner))

    def record_signature(self, name: str, version: int, signature: str) -> Change:
        """The server signs with its own key, after checking the stored bytes' checksum;
        ``signature`` (a client's) is not sent."""
        return self._change(f"{self._version(name, version)}/signature")

    def add_note(self, name: str, version: int, body: str) -> Note:
        found = self._post(f"{self._version(name, version)}/notes", api.NoteBody(body=body))
        return entities.parse(Note, found)

    def version_notes(self, name: str, version: int) -> list[Note]:
        found = self.client.get(f"{self._version(name, version)}/notes")
        return entities.parse_list(Note, found)

    def history(self, name: str) -> list[ModelEvent]:
        return entities.parse_list(ModelEvent, self.client.get(f"{self._model(name)}/history"))

    def requests(self, name: str) -> list[PromotionRequest]:
        found = self.client.get(f"{self._model(name)}/requests")
        return entities.parse_list(PromotionRequest, found)

    def in_stage(self, name: str, stage: Stage) -> ModelVersion:
        found = self.client.get(f"{self._model(name)}/stages/{stage}")
        return entities.parse(ModelVersion, found)

    def comment(
        self,
        name: str,
        version: int,
        body: str,
        reply_to: int | None = None,
        on_request: bool = False,
    ) -> Note:
        sent = api.CommentBody(body=body, reply_to=reply_to, on_request=on_request)
        return entities.parse(Note, self._post(f"{self._version(name, version)}/comments", sent))

    def comments(self, name: str, version: int) -> list[Note]:
        found = self.client.get(f"{self._version(name, version)}/comments")
        return entities.parse_list(Note, found)

    def request_changes(self, name: str, version: int, reason: str) -> Review:
        body = api.ReviewReason(reason=reason)
        return entities.parse(Review, self._post(f"{self._version(name, version)}/changes", body))

    def raise_objection(self, name: str, version: int, reason: str) -> Review:
        path = f"{self._version(name, version)}/objections"
        return entities.parse(Review, self._post(path, api.ReviewReason(reason=reason)))

    def request_review_again(self, name: str, version: int, note: str | None = None) -> Change:
        return self._change(f"{self._version(name, version)}/rerequest", api.Decision(note=note))

    def withdraw_objection(self, name: str, version: int, note: str | None = None) -> list[Review]:
        path = f"{self._version(name, version)}/objections/withdraw"
        return entities.parse_list(Review, self._post(path, api.Decision(note=note)))

    def overrule_objections(self, name: str, version: int, reason: str) -> list[Review]:
        path = f"{self._version(name, version)}/objections/overrule"
        return entities.parse_list(Review, self._post(path, api.ReviewReason(reason=reason)))

    def reviews(self, name: str) -> list[Review]:
        return entities.parse_list(Review, self.client.get(f"{self._model(name)}/reviews"))
