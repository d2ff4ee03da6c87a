"""``mlship runs list --filter/--sort/--page`` on a workspace and through a tracking server.

The runs are synthetic (:mod:`mlship.store.synthetic_runs`) and the expected pages are worked
out here from each run's own record (``get_run``: its selected candidate's params and its
holdout metrics), not from the search under test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.store.entities import Run
from mlship.store.synthetic_runs import seed_runs
from mlship.workspace import Workspace
from tests.backends import Backend, open_backend
from tests.conftest import invoke_cli, run_cli

RUNS = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backend, list[Run]]]:
    """A tracking server over a SQLite workspace holding ``RUNS`` synthetic runs."""
    with open_backend("http-sqlite", tmp_path_factory.mktemp("search"), None) as backend:
        assert backend.server_home is not None
        ws = Workspace.open(Settings(home=backend.server_home, user="alice", n_jobs=1))
        try:
            ids = seed_runs(ws.metadata, RUNS, pipeline="churn")
            runs = [ws.runs.get_run(run_id) for run_id in ids]
        finally:
            ws.close()
        yield backend, runs


def _auc(run: Run) -> float:
    return next(m.value for m in run.metrics if m.split == "holdout" and m.name == "roc_auc")


def _param(run: Run, name: str) -> object:
    return next(c for c in run.candidates if c.selected).params[name]


def _depth(run: Run) -> int:
    depth = _param(run, "max_depth")
    assert isinstance(depth, int)
    return depth


def _ids(output: str) -> list[str]:
    return re.findall(r"│ ([0-9a-f]{8}) │", output)


def test_a_filtered_sorted_page_of_runs(server: tuple[Backend, list[Run]]) -> None:
    backend, runs = server
    home = backend.server_home
    assert home is not None
    wanted = sorted(
        (r for r in runs if _auc(r) > 0.3 and _param(r, "model") == "gbm"),
        key=lambda r: (_auc(r), -r.started_at.timestamp()),
    )
    args = ("runs", "list", "--filter", 'metric.roc_auc > 0.3 and param.model = "gbm"',
            "--sort", "metric.roc_auc:asc", "--limit", "4", "--page", "2")  # fmt: skip
    local = invoke_cli(*args, home=home, env={"MLSHIP_USER": "alice"}).stdout
    assert _ids(local) == [r.id[:8] for r in wanted[4:8]]
    assert "metric.roc_auc" in local and "param.model" in local
    pages = (len(wanted) + 3) // 4
    assert f"page 2 of {pages} ({len(wanted)} runs, 4 a page); the next: --page 3" in local
    assert f"{_auc(wanted[4]):.6g}" in local
    # The same through the server, in a fresh interpreter as users run it.
    assert backend.server is not None and backend.admin_token is not None
    remote_env = {"MLSHIP_URL": backend.server.base, "MLSHIP_TOKEN": backend.admin_token}
    remote = run_cli(*args, home=backend.root / "client", env=remote_env).stdout
    assert _ids(remote) == _ids(local)


def test_owner_tags_and_sorting_by_a_param(server: tuple[Backend, list[Run]]) -> None:
    backend, runs = server
    home = backend.server_home
    assert home is not None
    mine = [r for r in runs if r.owner == "bob" and r.tags.get("team") == "risk"]
    deepest = sorted(mine, key=lambda r: (-_depth(r), -r.started_at.timestamp()))
    shown = invoke_cli(
        "runs", "list", "--owner", "bob", "--tag", "team=risk", "--sort", "param.max_depth",
        home=home, env={"MLSHIP_USER": "alice"},
    ).stdout  # fmt: skip
    assert _ids(shown) == [r.id[:8] for r in deepest]
    assert "page " not in shown  # everything fits on one page: no pager line
    one = runs[7]
    found = invoke_cli(
        "runs", "list", "--search", one.id[:10].upper(), "--column", "metric.f1",
        "--column", "param.model", home=home,
    ).stdout  # fmt: skip
    assert _ids(found) == [one.id[:8]]
    f1 = next(m.value for m in one.metrics if m.split == "holdout" and m.name == "f1")
    line = next(line for line in found.splitlines() if one.id[:8] in line)
    assert re.search(rf"│ +{f1:.6g} │ {_param(one, 'model')} +│$", line), line


def test_a_bad_filter_or_sort_is_an_error_that_says_where(
    server: tuple[Backend, list[Run]],
) -> None:
    backend, _ = server
    home = backend.server_home
    assert home is not None
    bad = invoke_cli(
        "runs", "list", "--filter", "metric.roc_auc >> 1", home=home, check=False
    )  # fmt: skip
    assert bad.returncode == 1
    assert " ".join(bad.stderr.split()) == (
        "error: filter: expected a value after metric.roc_auc > at character 17, got '>'"
    )
    assert "Traceback" not in bad.stderr
    assert backend.server is not None and backend.admin_token is not None
    remote_env = {"MLSHIP_URL": backend.server.base, "MLSHIP_TOKEN": backend.admin_token}
    sort = invoke_cli(
        "runs", "list", "--sort", "colour:asc", home=backend.root / "client", env=remote_env,
        check=False,
    )  # fmt: skip
    assert sort.returncode == 1
    assert "cannot sort by 'colour'; expected one of started" in " ".join(sort.stderr.split())


def test_the_server_refuses_a_bad_search_with_a_400_that_says_why(
    server: tuple[Backend, list[Run]],
) -> None:
    backend, _ = server
    assert backend.server is not None and backend.admin_token is not None
    headers = {"Authorization": f"Bearer {backend.admin_token}"}
    url = f"{backend.server.base}/api/v1/search/runs"
    with httpx.Client(headers=headers, timeout=30) as http:
        answer = http.get(url, params={"filter": "tag.team > growth"})
        assert answer.status_code == 400
        assert answer.json() == {
            "error": "FilterError",
            "detail": "filter: at character 1: tag.team is compared with = or != only, not >",
        }
        assert http.get(url, params={"page_size": 0}).status_code == 422
        assert http.get(url, params={"sort": "param."}).status_code == 400
        page = http.get(url, params={"filter": "param.max_depth >= 8", "column": "metric.f1"})
        assert page.status_code == 200
        rows = page.json()["rows"]
        assert rows and all(r["values"]["param.max_depth"] >= 8 for r in rows)
        assert all(set(r["values"]) == {"metric.f1", "param.max_depth"} for r in rows)

        @settings(derandomize=True, max_examples=60, deadline=None)
        @given(
            st.text(max_size=60),
            st.one_of(st.none(), st.text(max_size=20)),
            st.one_of(st.none(), st.text(max_size=30)),
        )
        def never_a_500(filter: str, text: str | None, sort: str | None) -> None:
            params = {"filter": filter, "text": text, "sort": sort}
            answer = http.get(url, params={k: v for k, v in params.items() if v is not None})
            assert answer.status_code in (200, 400, 422), answer.text
            if answer.status_code == 400:
                assert answer.json()["error"] == "FilterError"

        never_a_500()
