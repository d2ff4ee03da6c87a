"""The runs list of ``mlship ui`` over many runs: the filter language, the search, sorting by a
column, chosen columns and pages of 50, read from the HTML the real app serves (Starlette's test
client, a real SQLite workspace)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.store.repositories import NewCandidate, NewMetric
from mlship.ui import local_app
from mlship.ui.charts import compare_charts, run_metrics
from mlship.ui.runs import PAGE_SIZE
from mlship.workspace import Workspace
from tests.conftest import invoke_cli

RUNS = 120
FILTER_WORDS = (
    "metric.accuracy", "param.C", "tag.team", "owner", "status", "duration", "and", "or",
    "=", "!=", "<", ">=", "0.5", "-1e309", "nan", '"x y"', "'", '"', "\\", "ann", "red", ".",
    "metric.", "tag.", 'tag."k"', "started:asc", "metric.accuracy:desc", "param.C:asc",
)  # fmt: skip


def _dataset(workspace: Workspace) -> int:
    artifact = workspace.artifacts.put_bytes(b"a dataset").sha256
    dataset, _ = workspace.tracking.get_or_add_dataset("h" * 64, artifact, 10, [{"name": "x"}], [])
    return dataset.id


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, list[str]]]:
    """120 runs: every third failed, the others finished with score i/1000 (run i), owners ann
    and bob in turn, the even ones tagged team=red, run 118 also a metric "f1, macro"; their ids
    in the order they started. Read only, so made once for the module."""
    workspace = Workspace.open(
        Settings(home=tmp_path_factory.mktemp("many") / "ws", n_jobs=1, user="tester")
    )
    store = workspace.metadata
    dataset = _dataset(workspace)
    ids = []
    for i in range(RUNS):
        run_id = store.start_run(
            pipeline=f"pipe{i % 4}",
            task="classification",
            metric="accuracy",
            spec_path="/x.yaml",
            spec_hash="0" * 64,
            spec={},
            git_commit=None,
            environment={},
        )
        ids.append(run_id)
        store.set_run_owner(run_id, "ann" if i % 2 == 0 else "bob")
        if i % 2 == 0:
            store.tag_run(run_id, {"team": "red"})
        if i % 3 == 0:
            store.fail_run(run_id, "boom", datetime.now(UTC))
            continue
        candidate = NewCandidate(
            name=f"model{i}",
            estimator="sklearn.linear_model.LogisticRegression",
            params={"C": i},
            cv_mean=i / 1000,
            cv_std=0.01,
            fit_seconds=1.0,
            rank=1,
            selected=True,
        )
        metric = NewMetric(
            candidate=candidate.name, split="holdout", name="accuracy", value=i / 100
        )
        odd = NewMetric(candidate=candidate.name, split="holdout", name="f1, macro", value=0.5)
        store.finish_run(
            run_id,
            dataset_id=dataset,
            candidates=[candidate],
            metrics=[metric, *([odd] if i == 118 else [])],
            best_candidate=candidate.name,
            wall_seconds=1.0,
        )
    yield workspace, ids
    workspace.close()


@pytest.fixture(scope="module")
def many(seeded: tuple[Workspace, list[str]]) -> Iterator[tuple[TestClient, list[str]]]:
    workspace, ids = seeded
    with TestClient(local_app(workspace), base_url="http://127.0.0.1:8765") as client:
        yield client, ids


def _listed(html: str) -> list[str]:
    return re.findall(r'name="run" value="([0-9a-f]{32})"', html)


def test_pages_of_fifty_newest_first(many: tuple[TestClient, list[str]]) -> None:
    client, ids = many
    newest_first = ids[::-1]
    first = client.get("/ui/runs")
    assert first.status_code == 200
    assert _listed(first.text) == newest_first[:PAGE_SIZE]
    assert f"{RUNS} runs, page 1 of 3" in first.text
    third = client.get("/ui/runs", params={"page": 3})
    assert _listed(third.text) == newest_first[100:]
    assert 'rel="prev"' in third.text and 'rel="next"' not in third.text
    beyond = client.get("/ui/runs", params={"page": 99})  # the last page, not an empty one
    assert _listed(beyond.text) == newest_first[100:]


def test_filters_combine_and_pages_keep_them(many: tuple[TestClient, list[str]]) -> None:
    client, ids = many
    expected = [ids[i] for i in range(RUNS) if i % 2 == 0 and i % 3 == 0][::-1]
    typed = client.get(
        "/ui/runs", params={"filter": "owner = ann and tag.team = red and status = failed"}
    )
    assert typed.status_code == 200 and _listed(typed.text) == expected
    # The older parameters (the links of before) still say the same.
    answer = client.get("/ui/runs", params={"owner": "ann", "status": "failed", "tag": "team=red"})
    assert _listed(answer.text) == expected
    page = client.get("/ui/runs", params={"filter": "owner = bob", "sort": "started:asc"})
    assert _listed(page.text) == [ids[i] for i in range(RUNS) if i % 2][:PAGE_SIZE]
    assert "/ui/runs?filter=owner+%3D+bob&amp;sort=started%3Aasc&amp;page=2" in page.text
    assert 'value="owner = bob"' in page.text  # the filter stays in its box


def test_filtering_by_params_and_metrics_and_sorting_by_a_metric(
    many: tuple[TestClient, list[str]],
) -> None:
    client, ids = many
    finished = [i for i in range(RUNS) if i % 3]
    found = client.get("/ui/runs", params={"filter": "param.C >= 100 and metric.accuracy < 1.1"})
    assert _listed(found.text) == [ids[i] for i in finished if 100 <= i < 110][::-1]
    assert _listed(client.get("/ui/runs", params={"filter": 'param.C = "77"'}).text) == [ids[77]]
    best = client.get("/ui/runs", params={"sort": "metric.accuracy:desc"})
    assert _listed(best.text) == [ids[i] for i in sorted(finished, reverse=True)[:PAGE_SIZE]]
    assert 'aria-sort="descending"' in best.text
    worst = client.get("/ui/runs", params={"sort": "metric.accuracy:asc", "page": 2})
    listed = _listed(worst.text)
    assert listed[: len(finished) - PAGE_SIZE] == [ids[i] for i in finished[PAGE_SIZE:]]
    unscored = [ids[i] for i in range(RUNS) if i % 3 == 0][::-1]  # then the rest, newest first
    assert listed[len(finished) - PAGE_SIZE :] == unscored[: 2 * PAGE_SIZE - len(finished)]


def test_the_search_box_finds_ids_pipelines_owners_and_models(
    many: tuple[TestClient, list[str]],
) -> None:
    client, ids = many
    assert _listed(client.get("/ui/runs", params={"q": "model13"}).text) == [ids[13]]
    assert _listed(client.get("/ui/runs", params={"q": ids[42][:9].upper()}).text) == [ids[42]]
    piped = client.get("/ui/runs", params={"q": "PIPE1", "sort": "started:asc"})
    assert _listed(piped.text) == [ids[i] for i in range(RUNS) if i % 4 == 1]
    assert "30 runs." in piped.text


def test_the_chosen_columns_show_each_runs_values(many: tuple[TestClient, list[str]]) -> None:
    client, ids = many
    default = client.get("/ui/runs").text  # the newest scored run's metrics
    assert 'title="metric.accuracy"' in default and 'title="param.C"' not in default
    assert 'value="metric.accuracy" checked' in default and 'value="param.C">' in default
    chosen = client.get("/ui/runs", params=[("columns", "param.C"), ("columns", "")]).text
    assert 'title="param.C"' in chosen and 'title="metric.accuracy"' not in chosen
    row = re.search(rf'value="{ids[119]}".*?</tr>', chosen, re.S)
    assert row is not None and '<td class="num">119</td>' in row.group()
    none = client.get("/ui/runs", params={"columns": ""}).text  # none, on purpose
    assert 'title="metric.' not in none and 'title="param.' not in none
    # A column the sort or the filter names is shown whether chosen or not.
    by_c = client.get("/ui/runs", params={"columns": "", "sort": "param.C:desc"}).text
    assert 'title="param.C"' in by_c and _listed(by_c)[0] == ids[119]
    both = client.get("/ui/runs", params={"columns": "metric.accuracy,param.C"}).text
    assert both.index('title="metric.accuracy"') < both.index('title="param.C"')
    # A name with a comma in it, as its box in the chooser sends it.
    assert 'name="columns" value="metric.f1, macro"' in default
    odd = client.get("/ui/runs", params={"columns": "metric.f1, macro", "page": 1}).text
    row = re.search(rf'value="{ids[118]}".*?</tr>', odd, re.S)
    assert 'title="metric.f1, macro"' in odd and row is not None and ">0.5</td>" in row.group()


def test_a_heading_sorts_by_its_column_and_clicked_again_the_other_way(
    many: tuple[TestClient, list[str]],
) -> None:
    client, _ids = many
    params = {"filter": "status = succeeded", "columns": "metric.accuracy"}
    page = client.get("/ui/runs", params=params)
    link = re.search(r'href="(/ui/runs\?[^"]*sort=metric.accuracy[^"]*)"', page.text)
    assert link is not None
    target = link.group(1).replace("&amp;", "&")
    assert target == (
        "/ui/runs?filter=status+%3D+succeeded&sort=metric.accuracy%3Adesc&columns=metric.accuracy"
    )
    again = client.get(target).text
    assert 'aria-sort="descending"' in again
    assert "sort=metric.accuracy%3Aasc" in again  # the same heading now sorts the other way
    assert "sort=owner%3Aasc" in again  # a text column sorts A to Z first


def test_bad_filters_are_shown_beside_the_box_with_where_they_went_wrong(
    many: tuple[TestClient, list[str]],
) -> None:
    client, _ids = many
    for params, message in (
        (
            {"filter": "metric.accuracy >"},
            "filter: expected a value after metric.accuracy &gt; at character 18, got the end",
        ),
        (
            {"filter": "owner = ann or owner = bob"},
            "filter: expected &#39;and&#39; or the end of the filter at character 13, got "
            "&#39;or&#39; (only &#39;and&#39; joins conditions)",
        ),
        ({"filter": "colour = red"}, "filter: unknown field &#39;colour&#39; at character 1"),
        ({"sort": "name"}, "sort: cannot sort by &#39;name&#39;; expected one of started"),
        ({"status": "done"}, "status: expected one of running, succeeded"),
        ({"tag": "team"}, "tag: expected KEY=VALUE, got &#39;team&#39;"),
        ({"page": "0"}, "page: expected a page number from 1, got &#39;0&#39;"),
        (
            {"columns": "accuracy"},
            "columns: expected metric.NAME or param.NAME, got &#39;accuracy&#39;",
        ),
        ({"q": "a\x00b"}, "q: cannot contain the NUL character"),
    ):
        answer = client.get("/ui/runs", params=params)
        assert answer.status_code == 400 and message in answer.text, (params, answer.text)
        assert 'role="alert" id="runs-error"' in answer.text
        assert '<form class="filters"' in answer.text  # the page, to mend the filter in
    typed = client.get("/ui/runs", params={"filter": 'param.C = "7'}).text
    assert 'value="param.C = &#34;7"' in typed and 'aria-invalid="true"' in typed
    assert "the string that opens at character 11 is never closed" in typed
    swapped = client.get("/ui/runs", params={"filter": "x"}, headers={"hx-request": "true"})
    assert swapped.status_code == 400 and "<h1>" not in swapped.text
    assert "filter: unknown field" in swapped.text


@settings(
    derandomize=True,
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(["filter", "q", "sort", "page", "columns", "status", "owner", "tag"]),
            st.one_of(
                st.text(max_size=40),
                st.lists(st.sampled_from(FILTER_WORDS), max_size=8).map(" ".join),
            ),
        ),
        max_size=6,
    )
)
def test_odd_list_parameters_get_a_page_or_a_400_never_a_500(
    many: tuple[TestClient, list[str]], params: list[tuple[str, str]]
) -> None:
    client, _ids = many
    answer = client.get("/ui/runs", params=params)
    assert answer.status_code in (200, 400), (params, answer.text[:300])
    if answer.status_code == 400:
        assert 'id="runs-error"' in answer.text


def test_the_compare_charts_hold_each_runs_figures(
    many: tuple[TestClient, list[str]], seeded: tuple[Workspace, list[str]]
) -> None:
    client, ids = many
    workspace = seeded[0]
    chosen = [workspace.tracking.get_run(ids[i]) for i in (1, 2)]
    assert run_metrics(chosen[0]) == {"accuracy": 0.01}
    charts = compare_charts(chosen, [[], []])
    assert len(charts) == 1
    series = charts[0].options["series"]
    assert [(s["name"], s["data"]) for s in series] == [
        (f"pipe1 {ids[1][:8]}", [0.01]),
        (f"pipe2 {ids[2][:8]}", [0.02]),
    ]
    page = client.get("/ui/compare", params=[("run", ids[1]), ("run", ids[2][:10])])
    assert page.status_code == 200 and "Compare 2 runs" in page.text
    assert '"data": [0.02]' in page.text  # the options travel as JSON, not as script
    assert client.get("/ui/compare").status_code == 400
    assert client.get("/ui/compare", params={"run": "nosuchrun"}).status_code == 404


def test_mlship_ui_refuses_to_listen_beyond_this_machine(workspace: Workspace) -> None:
    result = invoke_cli(
        "ui", "--host", "0.0.0.0", home=workspace.settings.home_resolved, check=False
    )
    assert result.returncode != 0
    assert "mlship ui serves without a sign-in, so only on this machine" in result.stderr


def test_a_database_password_in_a_spec_or_an_error_is_never_shown(workspace: Workspace) -> None:
    url = "postgresql+psycopg://etl:hunter2@db.internal/crm"
    run_id = workspace.metadata.start_run(
        pipeline="leaky",
        task="classification",
        metric="accuracy",
        spec_path="/x.yaml",
        spec_hash="0" * 64,
        spec={"sources": [{"query": "SELECT 1", "url": url}]},
        git_commit=None,
        environment={},
    )
    workspace.metadata.fail_run(run_id, f"could not connect to {url}", datetime.now(UTC))
    with TestClient(local_app(workspace), base_url="http://localhost:8765") as client:
        page = client.get(f"/ui/runs/{run_id}")
    assert page.status_code == 200
    assert "hunter2" not in page.text
    assert "etl:***@db.internal" in page.text


def test_trials_a_client_of_the_server_journaled_are_charted(workspace: Workspace) -> None:
    """A run tuned through the tracking server keeps its trials in the run's journal in the
    metadata store (not in Optuna's tables): the compare page reads them there."""
    import optuna
    from optuna.storages import JournalStorage

    from mlship.remote.metadata import RemoteJournal
    from mlship.ui.runs import tuning_trials

    store = workspace.metadata
    run_id = store.start_run(
        pipeline="tuned",
        task="classification",
        metric="accuracy",
        spec_path="/x.yaml",
        spec_hash="0" * 64,
        spec={},
        git_commit=None,
        environment={},
    )
    journal = JournalStorage(RemoteJournal(workspace.journals, run_id))
    study = optuna.create_study(study_name=f"{run_id}:logistic", storage=journal)
    scores = {0.1: 0.7, 1.0: 0.8, 10.0: 0.75}

    def objective(trial: optuna.Trial) -> float:
        return scores[trial.suggest_float("C", 0.01, 100, log=True)]

    for c in scores:
        study.enqueue_trial({"C": c})
        study.optimize(objective, n_trials=1)
    candidate = NewCandidate(
        name="logistic",
        estimator="sklearn.linear_model.LogisticRegression",
        params={"C": 1.0},
        cv_mean=0.8,
        cv_std=0.01,
        fit_seconds=1.0,
        rank=1,
        selected=True,
        trials=3,
        tuning={"study": f"{run_id}:logistic", "trials": 3},
    )
    store.finish_run(
        run_id,
        dataset_id=_dataset(workspace),
        candidates=[candidate],
        metrics=[],
        best_candidate="logistic",
        wall_seconds=1.0,
    )
    run = workspace.tracking.get_run(run_id)
    [found] = tuning_trials(workspace, run)
    assert (found.candidate, found.params) == ("logistic", ["C"])
    assert found.values == [[0.1, 0.7], [1.0, 0.8], [10.0, 0.75]]
    with TestClient(local_app(workspace), base_url="http://localhost:8765") as client:
        page = client.get("/ui/compare", params={"run": run_id})
    assert page.status_code == 200 and "Tuning trials of logistic" in page.text


def test_local_forms_need_the_pages_csrf_token_too(workspace: Workspace) -> None:
    """No sign-in on localhost, but any web site the user visits can post to it: a note needs
    the token of the page it was written on."""
    run_id = workspace.metadata.start_run(
        pipeline="p",
        task="classification",
        metric="accuracy",
        spec_path="/x.yaml",
        spec_hash="0" * 64,
        spec={},
        git_commit=None,
        environment={},
    )
    with TestClient(local_app(workspace), base_url="http://127.0.0.1:8765") as client:
        page = client.get(f"/ui/runs/{run_id}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        for forged in ({"body": "x"}, {"body": "x", "csrf": "0" * 64}):
            answer = client.post(f"/ui/runs/{run_id}/notes", data=forged, follow_redirects=False)
            assert answer.status_code == 403
        assert workspace.tracking.notes("run", run_id) == []
        answer = client.post(
            f"/ui/runs/{run_id}/notes",
            data={"body": "from the page", "csrf": csrf.group(1)},
            follow_redirects=False,
        )
        assert answer.status_code == 303
    assert [(n.author, n.body) for n in workspace.tracking.notes("run", run_id)] == [
        (workspace.settings.user, "from the page")
    ]


def test_a_refused_sort_is_not_sent_again_by_the_form(many: tuple[TestClient, list[str]]) -> None:
    client, _ids = many
    refused = client.get("/ui/runs", params={"sort": "colour", "tag": "team"}).text
    assert '<input type="hidden" name="sort" id="runs-sort" value="" disabled>' in refused
    assert 'name="tag"' not in refused
    kept = client.get("/ui/runs", params={"sort": "owner:asc", "tag": "team=red"}).text
    assert 'id="runs-sort" value="owner:asc">' in kept
    assert '<input type="hidden" name="tag" value="team=red">' in kept
