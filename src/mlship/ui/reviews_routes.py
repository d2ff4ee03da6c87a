"""The review pages: a promotion request (``/models/{name}/requests/{id}``) with its forms, and
the open requests of every model (``/reviews``).

Each form posts to ``/models/{name}/requests/{id}/{step}``. The gate checks the CSRF token and
the API's role for the step; then the registry, acting as the signed-in user, decides by name and
by the state of the review, and writes the history and the audit log in the change's own
transaction. What the registry refuses comes back as the request's page with its reason, with
the status the API would answer (409 for a review rule, 400 for a missing reason, 404 for a
comment that is not there), never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mlship.errors import MlshipError, NotFoundError
from mlship.store.audit import acting
from mlship.store.registry import ReviewError
from mlship.ui import reviews as review_pages
from mlship.ui.access import Gate, Refused, Viewer
from mlship.ui.pages import PREFIX, render
from mlship.ui.pages import read_form as _form
from mlship.workspace import Workspace

ANCHORS = {"comment": "comments", "approve": "status", "reject": "status", "withdraw": "status"}


def add_reviews_routes(ui: FastAPI, gate: Gate, workspace: Workspace) -> None:
    """The review pages and their forms on ``ui``."""

    def show(
        request: Request, viewer: Viewer, view: review_pages.RequestView, **context: object
    ) -> Response:
        steps = view.steps(viewer)
        return render(request, viewer, "reviews_request.html", view=view, steps=steps, **context)

    @ui.get("/reviews")
    def open_requests(request: Request) -> Response:
        viewer = gate.viewer(request)
        query = review_pages.ReviewQuery.parse(dict(request.query_params))
        found = review_pages.open_requests(workspace, query)
        return render(request, viewer, "reviews_list.html", query=query, found=found)

    @ui.get("/models/{name}/requests/{ref}")
    def promotion_request(request: Request, name: str, ref: str) -> Response:
        viewer = gate.viewer(request)
        view = review_pages.request_view(workspace, name, review_pages.parse_id(ref))
        return show(request, viewer, view)

    @ui.post("/models/{name}/requests/{ref}/{step}")
    async def review_step(request: Request, name: str, ref: str, step: str) -> Response:
        if step not in review_pages.STEPS:
            raise Refused(404, f"no such step {step[:40]!r} on a promotion request")
        fields = await _form(request)
        viewer = await run_in_threadpool(gate.viewer, request)
        role = review_pages.STEPS[step]
        await run_in_threadpool(
            gate.check_form,
            request,
            viewer,
            fields.get("csrf", ""),
            role,
        )
        request_id = review_pages.parse_id(ref)
        view = await run_in_threadpool(review_pages.request_view, workspace, name, request_id)
        act = partial(_take, workspace, view, step, fields)

        def write() -> None:
            with acting(gate.actor(request, viewer)):
                act()

        try:
            await run_in_threadpool(write)
        except ReviewError as refused:
            status, detail = 409, str(refused)
        except NotFoundError as missing:
            status, detail = 404, str(missing)
        except MlshipError as bad:
            status, detail = 400, str(bad)
        else:
            target = f"{PREFIX}/models/{quote(name, safe='')}/requests/{request_id}"
            return RedirectResponse(f"{target}#{ANCHORS.get(step, 'reviews')}", 303)
        view = await run_in_threadpool(review_pages.request_view, workspace, name, request_id)
        return show(request, viewer, view, refusal=detail, status=status, draft=fields, failed=step)


def _take(
    workspace: Workspace, view: review_pages.RequestView, step: str, fields: dict[str, str]
) -> None:
    """Take ``step`` on the request of ``view`` through the registry, as the acting user."""
    registry = workspace.registry
    name, version = view.model, view.request.version
    text = fields.get("text", "")
    note = text.strip() or None
    if step == "comment":
        reply = fields.get("reply_to", "").strip()
        if reply and (not reply.isdigit() or len(reply) > 12):
            raise MlshipError(f"reply_to: expected a comment's number, got {reply[:40]!r}")
        if not reply and not view.newest:
            raise ReviewError(
                f"request #{view.request.id} is {view.request.status} and a newer request of "
                f"{name}:{version} exists; comment there"
            )
        registry.comment(name, version, text, int(reply) if reply else None, on_request=True)
        return
    if step in ("withdraw-objection", "overrule"):
        if step == "withdraw-objection":
            registry.withdraw_objection(name, version, note)
        else:
            registry.overrule_objections(name, version, text)
        return
    if not view.pending:
        raise ReviewError(
            f"request #{view.request.id} of {name}:{version} is {view.request.status}; "
            "there is nothing left to decide on it"
        )
    decide: dict[str, Callable[[], object]] = {
        "approve": lambda: registry.approve(name, version, note),
        "reject": lambda: registry.reject(name, version, note),
        "changes": lambda: registry.request_changes(name, version, text),
        "object": lambda: registry.raise_objection(name, version, text),
        "rerequest": lambda: registry.request_review_again(name, version, note),
        "withdraw": lambda: registry.withdraw(name, version, note),
    }
    decide[step]()
