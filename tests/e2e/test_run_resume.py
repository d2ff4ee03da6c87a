"""``mlship run --resume``: a run killed mid-search finishes without running a finished trial again.

The real command tunes the churn example's logistic regression on two pool workers; once the
study in the metadata database holds two finished trials, the run is sent SIGTERM (a spot
instance's notice) or SIGKILL (the instance gone). ``--resume`` with the run's id then takes it
over. The study is the count of what ran: every trial executed is a row of it (a trial cut off
mid-flight stays there, failed, and is asked again as a new one), so the finished trials of the
killed attempt must come back untouched, the search must end with exactly its budget of finished
trials, and the registered model must carry the parameters of the best trial the study holds.
The folds of the candidates with fixed parameters, cross-validated before the search, are kept
in the run's fold study the same way and must not be fitted again.
"""

from __future__ import annotations

import re
import signal
import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.conftest import run_cli
from tests.killing import Running, kill_and_check_nothing_survives, light

TRIALS = 20
"""Long enough that the kill lands mid-search however late a loaded machine lets the test see the
second finished trial: with eight, all of them had finished once by the time it was seen."""
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _searching(spec: Path, trials: int = TRIALS) -> Path:
    """The light churn example with a search of ``trials``, long enough to be cut in the
    middle."""
    text = spec.read_text()
    longer = text.replace("trials: 4, batch: 2", f"trials: {trials}, batch: 2")
    assert longer != text
    spec.write_text(longer)
    return spec


def _finished_trials(home: Path) -> int:
    """Finished trials of the logistic regression's search, read as the run writes them."""
    try:
        with sqlite3.connect(f"file:{home / 'mlship.db'}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute(
                "SELECT count(*) FROM trials JOIN studies USING (study_id) "
                "WHERE study_name LIKE '%:logistic' AND state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()
    except sqlite3.OperationalError:  # no database or no study yet
        return 0
    return int(row[0])


def _value(trial: FrozenTrial) -> float:
    return float("-inf") if trial.value is None else trial.value


def _study(ws: Workspace, run_id: str) -> optuna.Study:
    return optuna.load_study(study_name=f"{run_id}:logistic", storage=ws.tuning_storage(run_id))


def _trials(
    home: Path, short: str
) -> tuple[str, dict[int, FrozenTrial], dict[tuple[str, int], FrozenTrial]]:
    """The run's full id, the trials of its search, and the folds it kept, by candidate and
    fold."""
    ws = Workspace.open(Settings(home=home, n_jobs=1))
    try:
        run_id = ws.runs.get_run(short).id
        folds = optuna.load_study(study_name=f"{run_id}::folds", storage=ws.tuning_storage(run_id))
        return (
            run_id,
            {t.number: t for t in _study(ws, run_id).get_trials()},
            {(t.user_attrs["candidate"], t.user_attrs["fold"]): t for t in folds.get_trials()},
        )
    finally:
        ws.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_a_run_killed_mid_search_resumes_without_repeating_a_finished_trial(
    churn_spec: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    spec, home = _searching(light(churn_spec)), tmp_path / "home"
    running = Running.start(spec, home)
    running.wait_for("two finished trials", lambda: _finished_trials(home) >= 2)
    short = running.run_id()
    kill_and_check_nothing_survives(running, sig)

    run_id, before, folds_before = _trials(home, short)
    done = {n: t for n, t in before.items() if t.state in FINISHED}
    cut = {n for n, t in before.items() if t.state == TrialState.RUNNING}
    assert 2 <= len(done) < TRIALS, {n: t.state.name for n, t in before.items()}

    # Another run in between does not get in the way: the id names the one to continue.
    resumed = run_cli("run", str(spec), "--resume", short, home=home, cwd=spec.parent).stdout
    assert f"Resuming run {short} (attempt 2)" in resumed
    assert f"Tune logistic (resumed at {len(done)})" in resumed
    assert "Registered churn:1" in resumed

    _, after, folds_after = _trials(home, run_id)
    # The two fixed candidates' folds (three each) had finished before the search began: kept,
    # not refitted.
    assert len(folds_before) == 2 * 3 and folds_after.keys() == folds_before.keys()
    for key, fold in folds_before.items():
        assert folds_after[key].datetime_complete == fold.datetime_complete
    for number, trial in done.items():  # kept as they were, not run again
        kept = after[number]
        assert (kept.state, kept.value, kept.params) == (trial.state, trial.value, trial.params)
        assert kept.datetime_complete == trial.datetime_complete
    for number in cut:  # cut off mid-flight: failed
        assert after[number].state == TrialState.FAIL
    new = [t for n, t in after.items() if n not in before]
    assert len(new) == TRIALS - len(done), "a finished trial was run again, or one was lost"
    assert all(t.state in FINISHED for t in new)
    asked_again = [t.params for t in new]
    tried = [t.params for t in done.values()]
    assert not [p for p in asked_again if p in tried], "a finished trial's point was drawn again"
    for number in cut:  # its parameters, when it had drawn them, are among the new trials'
        assert not after[number].params or after[number].params in asked_again
    finished = [t for t in after.values() if t.state in FINISHED]
    assert len(finished) == TRIALS

    # One finished run, whose logistic regression is the best trial of the study.
    best = max((t for t in finished if t.state == TrialState.COMPLETE), key=_value)
    ws = Workspace.open(Settings(home=home, n_jobs=1))
    try:
        run = ws.runs.get_run(short)
        assert (run.status, run.attempts) == ("succeeded", 2)
        logistic = next(c for c in run.candidates if c.name == "logistic")
        assert logistic.params["C"] == pytest.approx(best.user_attrs["params"]["C"])
        assert logistic.cv_mean == pytest.approx(best.value)
        assert len(ws.runs.list_runs()) == 1
    finally:
        ws.close()
    listed = run_cli("runs", "list", home=home).stdout
    assert re.search(rf"{short}.*succeeded", listed), listed

    # Finished, it cannot be resumed again; the command says so instead of training afresh.
    again = run_cli("run", str(spec), "--resume", short, home=home, cwd=spec.parent, check=False)
    assert again.returncode == 1
    assert f"run {short} of churn already succeeded; nothing to resume" in " ".join(
        again.stderr.split()
    )
