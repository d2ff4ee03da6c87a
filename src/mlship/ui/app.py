"""The web UI: server-rendered pages over a workspace, in two homes.

:func:`create_ui` builds the pages as an app of their own, mounted under ``/ui``: by ``mlship ui``
on the local workspace (:func:`local_app`), and by ``mlship server`` next to its API. The pages
are plain HTML forms and links, so they work with scripts off; htmx only swaps the runs table in
place when a filter changes, and ECharts draws the charts. Both, and the stylesheet, are files of
this package: nothing is fetched from anywhere else, and the Content-Security-Policy says so.
"""

from __future__ import annotations

import hmac
import secrets
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from mlship import __version__
from mlship.data.readers.masking import mask_text
from mlship.errors import MlshipError, NotFoundError
from mlship.html.page import BASE_CSS
from mlship.security.ui_sessions import SESSION_LIFETIME, SqlSessions
from mlship.security.users import SqlUsers
from mlship.store.audit import acting
from mlship.store.audit_log import SqlAuditLog
from mlship.ui import runs as run_pages
from mlship.ui.access import COOKIE, Gate, Home, Refused, SignInNeeded
from mlship.ui.admin_routes import add_admin_routes
from mlship.ui.charts import compare_charts
from mlship.ui.datasets_routes import add_datasets_routes
from mlship.ui.models_routes import add_models_routes
from mlship.ui.monitoring_routes import add_monitoring_routes
from mlship.ui.pages import PREFIX, REPORT_CSP, page, render
from mlship.ui.pages import read_form as _form
from mlship.ui.pages import templates as _templates
from mlship.ui.reviews_routes import add_reviews_routes
from mlship.ui.runs import source_label
from mlship.workspace import Workspace

STATIC = Path(__file__).parent / "static"
SIGNIN_COOKIE = "mlship_signin"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def _when(value: Any) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


_templates.filters.update(
    number=_number, when=_when, seconds=_seconds, source=source_label, masked=mask_text
)
SECTIONS: tuple[tuple[str, str], ...] = (
    ("runs", "Runs"),
    ("models", "Models"),
    ("datasets", "Datasets"),
    ("reviews", "Reviews"),
    ("monitoring", "Monitoring"),
    ("admin/users", "Admin"),
)
"""The navigation's entries: each page's path under the prefix, and its label."""

_templates.globals.update(
    prefix=PREFIX, version=__version__, urlencode=urlencode, sections=SECTIONS
)


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if "Cache-Control" not in response.headers:
            # The package's own files may be kept a while; pages (user data) are never stored.
            static = request.url.path.startswith(f"{PREFIX}/static/")
            response.headers["Cache-Control"] = "max-age=3600" if static else "no-store"
        return response


def create_ui(workspace: Workspace, home: Home) -> FastAPI:
    """The UI's pages over ``workspace`` (a local one), for mounting under ``/ui``."""
    if workspace.remote is not None:
        raise MlshipError("the web UI reads a local workspace; unset MLSHIP_URL to run it")
    users = SqlUsers(workspace.metadata, workspace.settings.user)
    sessions = SqlSessions(workspace.metadata, users) if home == "server" else None
    audit = SqlAuditLog(workspace.metadata) if home == "server" else None
    gate = Gate(home, workspace.settings.user, sessions, audit)
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.mount("/static", StaticFiles(directory=STATIC), name="static")

    _handlers(ui)
    _session_routes(ui, gate, home, sessions)
    _run_routes(ui, gate, workspace)
    add_datasets_routes(ui, gate, workspace)
    add_monitoring_routes(ui, gate, workspace)
    add_admin_routes(ui, gate, workspace)
    add_reviews_routes(ui, gate, workspace)
    add_models_routes(ui, gate, workspace)
    ui.add_middleware(_SecurityHeaders)
    return ui


def _handlers(ui: FastAPI) -> None:
    def error(request: Request, status: int, detail: str) -> Response:
        htmx = request.headers.get("hx-request") == "true"  # the message alone, swapped in
        return page("error.html", status, viewer=None, htmx=htmx, status=status, detail=detail)

    @ui.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, _exc: SignInNeeded) -> Response:
        if request.method != "GET":
            return error(request, 403, "sign in first")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/signin?{urlencode({'next': target})}", 303)

    @ui.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return error(request, exc.status, exc.detail)

    @ui.exception_handler(NotFoundError)
    async def missing(request: Request, exc: NotFoundError) -> Response:
        return error(request, 404, str(exc))

    @ui.exception_handler(MlshipError)
    async def bad(request: Request, exc: MlshipError) -> Response:
        return error(request, 400, str(exc))


def _session_routes(ui: FastAPI, gate: Gate, home: Home, sessions: SqlSessions | None) -> None:
    @ui.get("/style.css")
    def style() -> Response:
        css = BASE_CSS + (STATIC / "ui.css").read_text(encoding="utf-8")
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @ui.get("/")
    def index() -> Response:
        return RedirectResponse(f"{PREFIX}/runs", 303)

    @ui.get("/signin")
    def signin_form(request: Request, then: Annotated[str, Query(alias="next")] = "") -> Response:
        if home == "local":
            return RedirectResponse(f"{PREFIX}/runs", 303)
        nonce = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(32)
        response = render(request, None, "signin.html", next=_safe_next(then), csrf=nonce)
        _set_cookie(request, response, SIGNIN_COOKIE, nonce, max_age=3600)
        return response

    @ui.post("/signin")
    async def signin(request: Request) -> Response:
        if home == "local" or sessions is None:
            return RedirectResponse(f"{PREFIX}/runs", 303)
        fields = await _form(request)
        nonce = request.cookies.get(SIGNIN_COOKIE, "")
        if not nonce or not hmac.compare_digest(fields.get("csrf", ""), nonce):
            raise Refused(403, "the form's CSRF token is missing or wrong; reload the page")
        token = fields.get("token", "")
        opened = await run_in_threadpool(
            partial(sessions.open, token, actor=lambda identity: gate.actor(request, identity))
        )
        target = _safe_next(fields.get("next", ""))
        if opened is None:
            await run_in_threadpool(gate.failed_sign_in, request)
            detail = "that token is not valid (unknown, revoked or expired, or its user disabled)"
            context = {"next": target, "csrf": nonce, "error": detail, "status": 401}
            return render(request, None, "signin.html", **context)
        response = RedirectResponse(target or f"{PREFIX}/runs", 303)
        max_age = int(SESSION_LIFETIME.total_seconds())
        _set_cookie(request, response, COOKIE, opened.id, max_age=max_age)
        response.delete_cookie(SIGNIN_COOKIE, path=PREFIX)
        return response

    @ui.post("/signout")
    async def signout(request: Request) -> Response:
        fields = await _form(request)
        viewer = await run_in_threadpool(gate.viewer, request)
        await run_in_threadpool(gate.check_form, request, viewer, fields.get("csrf", ""), "viewer")
        if sessions is not None:

            def close() -> None:
                with acting(gate.actor(request, viewer)):
                    sessions.close(request.cookies.get(COOKIE, ""))

            await run_in_threadpool(close)
        response = RedirectResponse(f"{PREFIX}/signin", 303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response


def _run_routes(ui: FastAPI, gate: Gate, workspace: Workspace) -> None:
    @ui.get("/runs")
    def runs(request: Request) -> Response:
        viewer = gate.viewer(request)
        params = request.query_params
        wanted = run_pages.RunsRequest.of({name: params.getlist(name) for name in params})
        found = run_pages.find_runs(workspace, wanted)
        name = "runs_table.html" if request.headers.get("hx-request") == "true" else "runs.html"
        context = {"listed": found, "query": found.request, "found": found.found}
        code = 200 if found.error is None else 400
        return render(request, viewer, name, statuses=run_pages.STATUSES, status=code, **context)

    @ui.get("/runs/{ref}")
    def run(request: Request, ref: str) -> Response:
        viewer = gate.viewer(request)
        detail = run_pages.run_detail(workspace, ref)
        return render(request, viewer, "run.html", detail=detail, run=detail.run)

    @ui.get("/runs/{ref}/report")
    def report(request: Request, ref: str) -> Response:
        gate.viewer(request)
        response = HTMLResponse(run_pages.report_html(workspace, ref))
        response.headers["Content-Security-Policy"] = REPORT_CSP
        response.headers["Content-Disposition"] = "inline"
        return response

    @ui.post("/runs/{ref}/notes")
    async def add_note(request: Request, ref: str) -> Response:
        fields = await _form(request)
        viewer = await run_in_threadpool(gate.viewer, request)
        await run_in_threadpool(
            gate.check_form, request, viewer, fields.get("csrf", ""), "scientist"
        )

        def write() -> str:
            with acting(gate.actor(request, viewer)):
                return workspace.tracking.add_run_note(ref, fields.get("body", "")).target_id

        run_id = await run_in_threadpool(write)
        return RedirectResponse(f"{PREFIX}/runs/{run_id}#notes", 303)

    @ui.get("/compare")
    def compare(request: Request) -> Response:
        viewer = gate.viewer(request)
        refs = list(dict.fromkeys(request.query_params.getlist("run")))
        if not refs:
            raise MlshipError("run: choose at least one run to compare (tick them in the list)")
        if len(refs) > 20:
            raise MlshipError(f"run: at most 20 runs at once, got {len(refs)}")
        chosen = [workspace.tracking.get_run(ref) for ref in refs]
        charts = compare_charts(chosen, [run_pages.tuning_trials(workspace, r) for r in chosen])
        return render(request, viewer, "compare.html", runs=chosen, charts=charts)


def _safe_next(target: str) -> str:
    """Where to go after signing in: a page of the UI, never another site."""
    ok = target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target
    return target if ok else ""


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def local_app(workspace: Workspace) -> FastAPI:
    """``mlship ui``: the pages on the local workspace, the local user acting, no sign-in."""
    app = FastAPI(title="mlship ui", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(PREFIX, create_ui(workspace, "local"))

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{PREFIX}/runs", 303)

    return app
