"""The dataset pages: the list, a dataset, its quarantine, and the diff of two versions.

Any signed-in role reads them (the API's dataset reads need no more); none of them changes
anything, so there is no form to guard beyond the filters' GETs.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mlship.ui import datasets as pages
from mlship.ui.access import Gate
from mlship.ui.quarantine import QuarantineQuery, quarantine_page
from mlship.workspace import Workspace


def add_datasets_routes(ui: FastAPI, gate: Gate, workspace: Workspace) -> None:
    from mlship.ui.pages import render

    @ui.get("/datasets")
    def datasets(request: Request) -> Response:
        viewer = gate.viewer(request)
        query = pages.DatasetListQuery.parse(dict(request.query_params))
        found = pages.find_datasets(workspace, query)
        return render(request, viewer, "datasets_list.html", query=query, found=found)

    @ui.get("/datasets/{ref}")
    def dataset(request: Request, ref: str) -> Response:
        viewer = gate.viewer(request)
        detail = pages.dataset_detail(workspace, ref)
        return render(request, viewer, "datasets_show.html", detail=detail, d=detail.dataset)

    @ui.get("/datasets/{ref}/quarantine")
    def quarantine(request: Request, ref: str) -> Response:
        viewer = gate.viewer(request)
        query = QuarantineQuery.parse(dict(request.query_params))
        dataset = workspace.datasets.get_dataset(ref)
        found = quarantine_page(workspace, dataset, query)
        context = {"query": query, "found": found, "d": dataset}
        return render(request, viewer, "datasets_quarantine.html", **context)

    @ui.get("/datasets/{ref}/diff")
    def diff(request: Request, ref: str) -> Response:
        viewer = gate.viewer(request)
        against = request.query_params.get("against", "")
        found = pages.dataset_diff(workspace, ref, against)
        return render(request, viewer, "datasets_diff.html", diff=found, against=against)
