"""The admin pages: the audit log (``/ui/audit``) and the users with their tokens
(``/ui/admin/users``), with forms to disable or enable a user and to revoke a token.

Only admins see them, as only admins may call the API's ``/api/v1/users``, ``/tokens`` and
``/audit``: anyone else gets 403. The forms carry the page's CSRF token and are checked again
for the admin role; a refusal is in the audit log. A change is made with the signed-in admin as
the acting user, so the audit log says who disabled whom from where.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mlship.errors import MlshipError
from mlship.store.audit import acting
from mlship.ui import admin
from mlship.ui.access import Gate, Refused, Viewer
from mlship.workspace import Workspace


def _admin(gate: Gate, request: Request) -> Viewer:
    viewer = gate.viewer(request)
    if not viewer.may("admin"):
        who = viewer.identity
        raise Refused(403, f"{who.user} is a {who.role}; this page is for admins only")
    return viewer


def add_admin_routes(ui: FastAPI, gate: Gate, workspace: Workspace) -> None:
    from mlship.ui.pages import PREFIX, render
    from mlship.ui.pages import read_form as _form

    @ui.get("/audit")
    def audit(request: Request) -> Response:
        viewer = _admin(gate, request)
        query = admin.AuditQuery.parse(dict(request.query_params))
        found = admin.audit_page(workspace, query)
        return render(
            request, viewer, "admin_audit.html", query=query, found=found, outcomes=admin.OUTCOMES
        )

    @ui.get("/admin/users")
    def users(request: Request) -> Response:
        viewer = _admin(gate, request)
        page_text = request.query_params.get("page") or "1"
        if not page_text.isdigit() or len(page_text) > 9 or int(page_text) < 1:
            raise MlshipError(f"page: expected a page number from 1, got {page_text[:40]!r}")
        found = admin.users_page(workspace, int(page_text))
        return render(request, viewer, "admin_users.html", found=found)

    @ui.post("/admin/users/{name}/disabled")
    async def set_disabled(request: Request, name: str) -> Response:
        fields = await _form(request)
        viewer = await run_in_threadpool(gate.viewer, request)
        await run_in_threadpool(gate.check_form, request, viewer, fields.get("csrf", ""), "admin")
        wanted = fields.get("disabled", "")
        if wanted not in ("true", "false"):
            raise MlshipError(f"disabled: expected true or false, got {wanted[:40]!r}")
        if wanted == "true" and name == viewer.identity.user:
            raise MlshipError(f"{name}: you cannot disable the user you are signed in as")

        def write() -> None:
            with acting(gate.actor(request, viewer)):
                workspace.users.set_disabled(name, wanted == "true")

        await run_in_threadpool(write)
        return RedirectResponse(f"{PREFIX}/admin/users#user-{name}", 303)

    @ui.post("/admin/tokens/{token_id}/revoke")
    async def revoke(request: Request, token_id: str) -> Response:
        fields = await _form(request)
        viewer = await run_in_threadpool(gate.viewer, request)
        await run_in_threadpool(gate.check_form, request, viewer, fields.get("csrf", ""), "admin")
        if not token_id.isdigit() or len(token_id) > 12:
            raise MlshipError(f"token: expected a token number, got {token_id[:40]!r}")

        def write() -> str:
            with acting(gate.actor(request, viewer)):
                token = workspace.users.revoke(int(token_id))
            return token.user.name if token.user is not None else ""

        owner = await run_in_threadpool(write)
        return RedirectResponse(f"{PREFIX}/admin/users#user-{owner}", 303)
