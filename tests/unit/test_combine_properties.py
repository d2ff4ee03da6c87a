"""Generated sources with duplicate keys, stacked or joined, through the real ingest.

For every case the expectation is computed from what was generated: which copies collapse, which
are quarantined, which one a policy keeps, which checks fail on a base column and which on a
joined one. The ingest must account for every input line (kept, quarantined, or collapsed or
dropped by the declared policy) and every reason must name the source and line its value came
from.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlship.config import Settings
from mlship.data.ingest import ingest
from mlship.spec import load_spec
from mlship.store.artifacts import ArtifactStore
from mlship.store.logstore import LogStore
from mlship.store.parts import Sealing
from mlship.store.repositories import Datasets, Marks
from mlship.workspace import Workspace

POLICIES = ["quarantine", "keep_first", "keep_last", "newest"]
# Values start with a failing one and stamps with ties, so that small examples fail checks too.
VALUES = st.sampled_from([-1, 2, 3, -2, 0])
STAMPS = st.sampled_from([1, 1, 2, 0])


@dataclass
class Source:
    """A generated CSV source: rows of (id, value, ts) in file order (line = index + 2)."""

    name: str
    value: str  # the checked column: ``a`` for stacked sources, ``b`` for the joined one
    policy: str
    rows: list[tuple[int, int, int]] = field(default_factory=list)

    def line(self, index: int) -> str:
        return f"line {index + 2}"

    @property
    def stacked(self) -> bool:
        return self.value == "a"

    def csv(self) -> str:
        if self.stacked:
            return "id,a,ts,y\n" + "".join(f"{i},{v},{t},yes\n" for i, v, t in self.rows)
        return "id,b,b_ts\n" + "".join(f"{i},{v},{t}\n" for i, v, t in self.rows)

    def yaml(self) -> str:
        stamp = "ts" if self.stacked else "b_ts"
        policy = f"{{newest_by: {stamp}}}" if self.policy == "newest" else self.policy
        return (
            f"  - name: {self.name}\n    path: {self.name}.csv\n    key: [id]\n"
            f"    on_duplicate: {policy}\n"
        )

    def resolved(self) -> tuple[dict[int, int], dict[int, list[int]], list[int]]:
        """What the declared policy makes of the rows.

        Returns the kept row (index) per id, the conflicting copies (indexes) per quarantined
        id, and the indexes collapsed or dropped.
        """
        distinct: dict[int, list[int]] = {}
        seen: set[tuple[int, int, int]] = set()
        gone: list[int] = []
        for index, row in enumerate(self.rows):
            if row in seen:
                gone.append(index)  # an exact copy of an earlier row
                continue
            seen.add(row)
            distinct.setdefault(row[0], []).append(index)
        kept: dict[int, int] = {}
        conflicting: dict[int, list[int]] = {}
        for key, copies in distinct.items():
            if len(copies) == 1:
                kept[key] = copies[0]
            elif self.policy == "quarantine":
                conflicting[key] = copies
            else:
                if self.policy == "keep_first":
                    winner = copies[0]
                elif self.policy == "keep_last":
                    winner = copies[-1]
                else:  # newest ts wins; a tie goes to the earlier line
                    winner = min(copies, key=lambda i: (-self.rows[i][2], i))
                kept[key] = winner
                gone.extend(i for i in copies if i != winner)
        return kept, conflicting, gone


@st.composite
def sources(draw: Any, name: str, value: str, ids: list[int]) -> Source:
    """Rows for ``ids``, each id once or repeated as exact or conflicting copies, shuffled."""
    source = Source(name, value, draw(st.sampled_from(POLICIES)))
    rows = []
    for key in ids:
        first = (key, draw(VALUES), draw(STAMPS))
        rows.append(first)
        for _ in range(draw(st.integers(0, 2))):
            exact = draw(st.booleans())
            rows.append(
                first if exact else (key, draw(st.integers(-2, 4)), draw(st.integers(0, 3)))
            )
    source.rows = draw(st.permutations(rows))
    return source


@dataclass
class Case:
    method: str
    stacked: list[Source]
    joined: Source | None


@st.composite
def cases(draw: Any) -> Case:
    method = draw(st.sampled_from(["union", "join"]))
    base_ids = draw(st.lists(st.integers(0, 9), min_size=1, max_size=6, unique=True))
    base = draw(sources("base", "a", base_ids))
    if method == "union":
        more_ids = draw(st.lists(st.integers(10, 19), min_size=1, max_size=5, unique=True))
        return Case(method, [base, draw(sources("more", "a", more_ids))], None)
    # The joined source knows some of the base's ids, and some ids of its own.
    known = draw(st.lists(st.sampled_from(base_ids), min_size=1, max_size=6, unique=True))
    own = draw(st.lists(st.integers(10, 12), max_size=2, unique=True))
    extra_ids = known + own
    return Case(method, [base], draw(sources("extra", "b", extra_ids)))


def _spec(case: Case) -> str:
    listed = [*case.stacked, *([case.joined] if case.joined else [])]
    combine = "combine:\n  method: union\n"
    columns = "  - {name: a, type: integer, checks: [{min: 0}]}\n"
    if case.joined is not None:
        combine = (
            "combine:\n  method: join\n  base: base\n  joins:\n"
            "    - {source: extra, on: [id], how: left}\n"
        )
        columns += "  - {name: b, type: integer, checks: [{min: 0}]}\n"
    return (
        "name: dups\ntask: classification\nsources:\n"
        + "".join(source.yaml() for source in listed)
        + combine
        + "columns:\n  - {name: id, type: integer, role: id}\n"
        + columns
        + "  - {name: ts, type: integer}\n  - {name: y, type: category, role: target}\n"
        + "checks:\n  max_quarantine: 1.0\n"
        + "models:\n  - {estimator: logistic_regression}\nmetric: accuracy\n"
    )


def _lines(source: Source, indexes: list[int]) -> str:
    numbers = [str(i + 2) for i in sorted(indexes)]
    return f"line{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"


def _expected(case: Case) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], list[str]]]:
    """Lines expected clean (as a multiset of (source, id)), and the reason fragments each
    quarantined (source, line) must carry."""
    clean: Counter[tuple[str, str]] = Counter()
    quarantined: dict[tuple[str, str], list[str]] = {}
    joined: dict[int, tuple[str, ...]] = {}
    if case.joined is not None:
        extra = case.joined
        kept, conflicting, _ = extra.resolved()
        for key, copies in conflicting.items():
            reason = (
                f"duplicate key (id = {key}) in source 'extra': {_lines(extra, copies)} disagree"
            )
            for index in copies:
                quarantined[("extra", extra.line(index))] = [reason]
            joined[key] = (
                f"duplicate key (id = {key}) in joined source 'extra': its copies at "
                f"{_lines(extra, copies)} disagree, so all are quarantined",
            )
        for key, index in kept.items():
            b = extra.rows[index][1]
            if b < 0:
                joined[key] = (f"b: {b} is below the minimum 0 (from extra {extra.line(index)})",)
    for source in case.stacked:
        kept, conflicting, _ = source.resolved()
        for key, copies in conflicting.items():
            reason = (
                f"duplicate key (id = {key}) in source '{source.name}': "
                f"{_lines(source, copies)} disagree"
            )
            for index in copies:
                quarantined[(source.name, source.line(index))] = [reason]
        for key, index in kept.items():
            reasons = []
            a = source.rows[index][1]
            if a < 0:
                reasons.append(f"a: {a} is below the minimum 0")
            reasons.extend(joined.get(key, ()))
            if reasons:
                quarantined[(source.name, source.line(index))] = reasons
            else:
                clean[(source.name, str(key))] += 1
    return clean, quarantined


@dataclass(frozen=True)
class _IngestStores:
    settings: Settings
    datasets: Datasets
    marks: Marks
    artifacts: ArtifactStore
    logs: LogStore
    sealing: Sealing


def _ingest(case: Case, root: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    for source in [*case.stacked, *([case.joined] if case.joined else [])]:
        (root / f"{source.name}.csv").write_text(source.csv(), encoding="utf-8")
    (root / "pipeline.yaml").write_text(_spec(case), encoding="utf-8")
    workspace = Workspace.open(Settings(home=root / "home", n_jobs=1, user="tester"))
    try:
        # Only the stores an ingest names, so it cannot lean on the rest of a workspace.
        stores = _IngestStores(
            workspace.settings,
            workspace.datasets,
            workspace.marks,
            workspace.artifacts,
            workspace.logs,
            workspace.sealing,
        )
        result = ingest(load_spec(root / "pipeline.yaml"), stores)
        quarantine_path = result.validation.get("quarantine_path")
        quarantine = pl.read_parquet(quarantine_path) if quarantine_path else pl.DataFrame()
        return pl.from_pandas(result.frame), quarantine, result.validation
    finally:
        workspace.close()


@settings(
    derandomize=True,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_every_line_is_accounted_for_and_every_reason_names_its_line(case: Case) -> None:
    clean_expected, quarantined_expected = _expected(case)
    with tempfile.TemporaryDirectory() as directory:
        clean, quarantine, validation = _ingest(case, Path(directory))

    # Clean: id by id, as many rows as expected (an id is in one stacked source only).
    owner = {key: s.name for s in case.stacked for key, _, _ in s.rows}
    found = Counter((owner[int(key)], str(key)) for key in clean["id"].to_list())
    assert found == clean_expected

    # Quarantined: exactly the expected lines, each with the expected reasons.
    rows = quarantine.select("_source", "_row", "_reasons").rows() if quarantine.height else []
    where = [(source, line) for source, line, _ in rows]
    assert len(where) == len(set(where)), "a line was quarantined twice"
    assert set(where) == set(quarantined_expected)
    for source, line, reasons in rows:
        for fragment in quarantined_expected[(source, line)]:
            assert fragment in reasons, (source, line, reasons)

    # Nothing vanishes: every line of every source is kept, quarantined, or collapsed/dropped
    # by the declared policy, and the summary counts the same.
    for source in [*case.stacked, *([case.joined] if case.joined else [])]:
        kept, conflicting, gone = source.resolved()
        counted = next(d for d in validation["duplicates"] if d["source"] == source.name)
        assert counted["exact_copies"] + counted["dropped_rows"] == len(gone)
        assert counted["quarantined_rows"] == sum(len(c) for c in conflicting.values())
        assert len(kept) + counted["quarantined_rows"] + len(gone) == len(source.rows)
    base_lines = sum(len(s.rows) for s in case.stacked)
    gone_lines = sum(len(s.resolved()[2]) for s in case.stacked)
    extra_quarantined = sum(1 for source, _ in quarantined_expected if source == "extra")
    assert validation["rows"]["in"] == base_lines - gone_lines + extra_quarantined
    assert validation["rows"]["quarantined"] == len(quarantined_expected)
    assert validation["rows"]["out"] == clean.height


@pytest.mark.parametrize("policy", POLICIES)
def test_a_generated_case_by_hand(policy: str, tmp_path: Path) -> None:
    """One case written out, so a reader sees what the property above checks."""
    base = Source("base", "a", policy, [(1, 1, 0), (2, 3, 1), (1, 1, 0), (2, -1, 2)])
    extra = Source("extra", "b", "quarantine", [(1, -4, 0), (2, 1, 0), (2, 2, 0)])
    case = Case("join", [base], extra)
    clean, quarantine, validation = _ingest(case, tmp_path)
    base_rows = quarantine.filter(pl.col("_source") == "base")
    reasons = dict(zip(base_rows["_row"], base_rows["_reasons"], strict=True))
    assert reasons["line 2"] == "b: -4 is below the minimum 0 (from extra line 2)"
    if policy == "quarantine":
        assert reasons["line 3"] == (
            "duplicate key (id = 2) in source 'base': lines 3, 5 disagree on a (3 at line 3, "
            "-1 at line 5); ts (1 at line 3, 2 at line 5)"
        )
    else:
        # The one copy of id 2 kept matches extra's conflicting copies, so it is quarantined.
        line = "line 3" if policy == "keep_first" else "line 5"
        assert reasons[line].startswith(
            "duplicate key (id = 2) in joined source 'extra': its copies at lines 3, 4 disagree, "
            "so all are quarantined"
        )
        assert ("a: -1 is below the minimum 0" in reasons[line]) == (line == "line 5")
    assert clean.height == 0
    assert validation["duplicates"][0]["exact_copies"] == 1
