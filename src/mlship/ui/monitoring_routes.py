"""The monitoring pages: ``/ui/monitoring`` (the models that served traffic, their health and
open alerts) and ``/ui/monitoring/{model}`` (one model's monitoring pass). Reading them takes a
viewer, as the API's alert history does; they change nothing, so they have no form but the
window's (a GET)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mlship.ui import monitoring
from mlship.ui.access import Gate
from mlship.workspace import Workspace


def add_monitoring_routes(ui: FastAPI, gate: Gate, workspace: Workspace) -> None:
    from mlship.ui.pages import render

    @ui.get("/monitoring")
    def models(request: Request) -> Response:
        viewer = gate.viewer(request)
        window = monitoring.parse_window(request.query_params.get("window"))
        page = monitoring.parse_page(request.query_params.get("page"))
        found = monitoring.overview(workspace, window, page)
        return render(
            request,
            viewer,
            "monitoring_list.html",
            overview=found,
            windows=monitoring.WINDOWS,
        )

    @ui.get("/monitoring/{model}")
    def model(request: Request, model: str) -> Response:
        viewer = gate.viewer(request)
        window = monitoring.parse_window(request.query_params.get("window"))
        found = monitoring.model_monitoring(workspace, model, window)
        return render(
            request,
            viewer,
            "monitoring_model.html",
            m=found,
            result=found.result,
            windows=monitoring.WINDOWS,
        )
