"""The model pages: the models list, a model (versions, history, pending requests), a version
(metrics, lineage, notes, card, diff) and the forms that move versions.

Each form is checked as the API checks the same change: its CSRF token first, then the role the
API's route asks for (stage moves, promotion requests and notes a scientist, a rollback a
reviewer); the registry then applies its own rules between people, and a step they refuse is
answered with the registry's own words (409), never a 500. Who acts is the signed-in user (the
local user on ``mlship ui``), recorded by the registry in the model's history.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mlship.store.accounts import Role
from mlship.store.audit import acting
from mlship.store.registry import ReviewError, Stage
from mlship.ui import models as pages
from mlship.ui.access import Gate, Refused, Viewer
from mlship.ui.pages import PREFIX, REPORT_CSP, render
from mlship.ui.pages import read_form as _form
from mlship.workspace import Workspace

MOVES: dict[str, str] = {"staging": "Move to staging", "archived": "Archive", "none": "Unstage"}
"""The stages a form moves a version to at once (production needs a request and a review)."""


def model_href(name: str, *parts: object) -> str:
    """A model page's path, the name quoted as a path segment."""
    tail = "".join(f"/{part}" for part in parts)
    return f"{PREFIX}/models/{quote(name, safe='')}{tail}"


def add_models_routes(ui: FastAPI, gate: Gate, workspace: Workspace) -> None:
    """The model pages and their forms, on the UI app ``ui``."""

    @ui.get("/models")
    def models(request: Request) -> Response:
        viewer = gate.viewer(request)
        query = pages.ModelQuery.parse(dict(request.query_params))
        found = pages.find_models(workspace, query)
        context: dict[str, Any] = {"query": query, "listed": found}
        return render(request, viewer, "models_list.html", **_helpers(), **context)

    @ui.get("/models/{name}")
    def model(request: Request, name: str) -> Response:
        viewer = gate.viewer(request)
        values = dict(request.query_params)
        shown = pages.model_page(
            workspace,
            pages.model_name(name),
            pages.page_number(values, "page"),
            pages.page_number(values, "history"),
        )
        context: dict[str, Any] = {"shown": shown, "model": shown.model}
        return render(request, viewer, "models_model.html", **_helpers(), **context)

    @ui.get("/models/{name}/versions/{number}")
    def version(request: Request, name: str, number: str) -> Response:
        viewer = gate.viewer(request)
        values = dict(request.query_params)
        against_text = values.get("against", "").strip()
        against = pages.version_number(against_text, "against") if against_text else None
        everything = values.get("all", "") in ("1", "yes", "true")
        number_ = pages.version_number(number)
        shown = pages.version_page(workspace, PREFIX, pages.model_name(name), number_, against)
        chart = pages.lineage_chart(shown.lineage)
        rows = pages.changed_rows(shown.diff, everything) if shown.diff else []
        context: dict[str, Any] = {"shown": shown, "chart": chart, "diff_rows": rows}
        return render(
            request, viewer, "models_version.html", everything=everything, **_helpers(), **context
        )

    @ui.get("/models/{name}/versions/{number}/card")
    def card(request: Request, name: str, number: str) -> Response:
        """The version's model card, the self-contained page ``mlship models card`` writes."""
        from mlship.registry.card import build_card
        from mlship.registry.card_page import render_card_html

        gate.viewer(request)
        number_ = pages.version_number(number)
        found = workspace.catalogue.get_version(pages.model_name(name), number_)
        response = HTMLResponse(render_card_html(build_card(workspace, found)))
        response.headers["Content-Security-Policy"] = REPORT_CSP
        return response

    _form_routes(ui, gate, workspace)


def _form_routes(ui: FastAPI, gate: Gate, workspace: Workspace) -> None:
    @ui.post("/models/{name}/versions/{number}/stage")
    async def move(request: Request, name: str, number: str) -> Response:
        fields, viewer = await _checked(request, gate, "scientist")
        name, version = pages.model_name(name), pages.version_number(number)
        stage = fields.get("stage", "")
        if stage not in MOVES:
            raise Refused(400, f"stage: expected one of {', '.join(MOVES)}, got {stage!r}")
        reason = fields.get("reason", "").strip() or None
        stage_: Stage = stage  # type: ignore[assignment]
        change = partial(workspace.registry.set_stage, name, version, stage_, reason)
        await _act(request, gate, viewer, change)
        return RedirectResponse(model_href(name) + "#history", 303)

    @ui.post("/models/{name}/versions/{number}/promotion")
    async def promote(request: Request, name: str, number: str) -> Response:
        fields, viewer = await _checked(request, gate, "scientist")
        name, version = pages.model_name(name), pages.version_number(number)
        reason = fields.get("reason", "").strip() or None
        change = partial(workspace.registry.request_promotion, name, version, reason)
        await _act(request, gate, viewer, change)
        return RedirectResponse(model_href(name, "versions", version) + "#promotion", 303)

    @ui.post("/models/{name}/rollback")
    async def rollback(request: Request, name: str) -> Response:
        fields, viewer = await _checked(request, gate, "reviewer")
        name = pages.model_name(name)
        reason = fields.get("reason", "").strip() or None
        await _act(request, gate, viewer, partial(workspace.registry.rollback, name, reason))
        return RedirectResponse(model_href(name) + "#history", 303)

    @ui.post("/models/{name}/versions/{number}/notes")
    async def note(request: Request, name: str, number: str) -> Response:
        fields, viewer = await _checked(request, gate, "scientist")
        name, version = pages.model_name(name), pages.version_number(number)
        body = fields.get("body", "")
        await _act(request, gate, viewer, partial(workspace.registry.add_note, name, version, body))
        return RedirectResponse(model_href(name, "versions", version) + "#notes", 303)


def _helpers() -> dict[str, Any]:
    return {
        "model_href": model_href,
        "moves": MOVES,
        "why": pages.event_why,
        "event_details": pages.event_details,
    }


async def _checked(request: Request, gate: Gate, role: Role) -> tuple[dict[str, str], Viewer]:
    """The form's fields and its viewer, once its CSRF token and the viewer's role pass."""
    fields = await _form(request)
    viewer = await run_in_threadpool(gate.viewer, request)
    await run_in_threadpool(gate.check_form, request, viewer, fields.get("csrf", ""), role)
    return fields, viewer


async def _act(request: Request, gate: Gate, viewer: Viewer, change: partial[Any]) -> None:
    """Run one registry change as the viewer; a step the review rules refuse is a 409."""

    def run() -> None:
        with acting(gate.actor(request, viewer)):
            try:
                change()
            except ReviewError as refused:
                raise Refused(409, str(refused)) from None

    await run_in_threadpool(run)
