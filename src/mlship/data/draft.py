"""Write a first pipeline spec from inferred sources: commented YAML that ``mlship run`` accepts.

The text is composed line by line so that every suggestion carries the comment that explains it
(why a column is an id, which columns may hold personal data); each value is written by the YAML
emitter, so labels such as ``yes`` or ``01`` come back as the strings they are.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from mlship.data.infer import InferredColumn, InferredSource, JoinKey, infer_task
from mlship.spec.data import Source

_MODELS = {
    "classification": [
        ("baseline", "logistic_regression", {"max_iter": 1000}),
        ("boosting", "hist_gradient_boosting", {"max_iter": 100, "random_state": 0}),
    ],
    "regression": [
        ("baseline", "ridge", {}),
        ("boosting", "hist_gradient_boosting", {"max_iter": 100, "random_state": 0}),
    ],
}
_METRIC = {"classification": "balanced_accuracy", "regression": "r2"}


@dataclass(frozen=True)
class DraftSource:
    """A source as the spec declares it, with what was inferred from its data."""

    source: Source
    inferred: InferredSource
    renamed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Draft:
    """Everything a first spec says: its sources, how they join, and the columns."""

    name: str
    sources: tuple[DraftSource, ...]
    columns: tuple[InferredColumn, ...]
    joins: tuple[JoinKey, ...] = ()
    other_keys: tuple[JoinKey, ...] = ()

    @property
    def task(self) -> str:
        return infer_task(next(c for c in self.columns if c.role == "target"))


def _flow(value: Any) -> str:
    """``value`` as one line of YAML flow style."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000_000)
    return text.strip().removesuffix("...").strip()


def spec_name(text: str) -> str:
    """A valid pipeline name made of ``text`` (a file stem)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip("0123456789_.-")[:100]
    return name or "pipeline"


def _bounds(column: InferredColumn) -> dict[str, float | int]:
    """The observed range widened by a tenth of its span (never below 0 for data that is not)."""
    assert column.minimum is not None and column.maximum is not None
    low, high = column.minimum, column.maximum
    margin = (high - low) * 0.1 or max(abs(low) * 0.1, 1.0)
    lower, upper = low - margin, high + margin
    if low >= 0 > lower:
        lower = 0.0
    if column.type == "integer":
        return {"min": math.floor(lower), "max": math.ceil(upper)}
    return {"min": _round(lower, floor=True), "max": _round(upper, floor=False)}


def _round(value: float, floor: bool) -> float:
    """``value`` to 3 significant digits, rounded outward so the range only grows."""
    if value == 0 or not math.isfinite(value):
        return value
    digits = 2 - math.floor(math.log10(abs(value)))
    scale = 10.0**-digits
    outward = (math.floor if floor else math.ceil)(value / scale) * scale
    return round(outward, max(digits, 0))


def _column_entry(column: InferredColumn) -> tuple[dict[str, Any], str | None]:
    entry: dict[str, Any] = {"name": column.name, "type": column.type}
    if column.role != "feature":
        entry["role"] = column.role
    if not column.nullable:
        entry["nullable"] = False
    checks: list[dict[str, Any]] = []
    if column.role == "feature" and column.minimum is not None:
        checks.append(_bounds(column))
    if column.allowed and column.role in ("feature", "target"):
        checks.append({"allowed": list(column.allowed)})
    if checks:
        entry["checks"] = checks
    if column.free_text and column.role == "feature":
        entry["transform"] = {"text": ["length", "words"]}
    comment = None
    if column.role == "pii":
        comment = f"PII candidate: review ({column.pii_reason}); pseudonymized, or pii: drop"
    elif column.role == "id":
        comment = "id: unique and never empty"
    elif column.free_text:
        comment = "free text: its length and word counts are features"
    return entry, comment


def _source_entry(draft_source: DraftSource) -> dict[str, Any]:
    source = draft_source.source
    entry: dict[str, Any] = source.model_dump(exclude_defaults=True, exclude_none=True)
    formats = draft_source.inferred.formats
    if formats is not None:
        entry["values"] = formats.model_dump(exclude_none=True)
    if draft_source.renamed:
        entry["mapping"] = {"rename": dict(draft_source.renamed)}
    return entry


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _split(draft: Draft) -> list[str]:
    """A test set scored once and k-fold CV; fewer folds when a class has too few rows for 5
    (stratified folds need each class in every fold). Classes too small even for 2 folds are
    named in a comment: the run would stop on them."""
    target = next(c for c in draft.columns if c.role == "target")
    folds = 5
    lines = []
    if draft.task == "classification" and target.smallest_class is not None:
        folds = max(2, min(5, int(target.smallest_class * 0.8)))
        small = [(value, count) for value, count in target.rare_classes if count < folds + 1]
        if small:
            named = [f"class {value!r} has {_rows(count)}" for value, count in small]
            listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
            lines += [
                f"# {listed}: a stratified split needs at least {folds + 1} (one in the test "
                f"set and one in each of {folds} folds);",
                "# merge such a class into another or drop its rows, or `mlship run` stops there",
            ]
    comment = f"a test set scored once; {folds}-fold CV on the rest"
    if folds < 5:
        comment += f" (the rarest class has {_rows(target.smallest_class or 0)})"
    return [*lines, f"split: {{holdout: 0.2, folds: {folds}, seed: 42}}   # {comment}"]


def render(draft: Draft, command: str) -> str:
    """The spec's YAML text."""
    task = draft.task
    rows = ", ".join(f"{s.inferred.label}: {s.inferred.rows} rows" for s in draft.sources)
    lines = [
        f"# Written by `{command}` from the data ({rows}).",
        "# Every type, role and check below is a suggestion read from the data: review them,",
        "# then run it with:  mlship run <this file>",
        f"name: {_flow(draft.name)}",
        f"task: {task}",
        "",
        "sources:",
    ]
    for draft_source in draft.sources:
        if draft_source.inferred.null_values:
            tokens = ", ".join(repr(t) for t in draft_source.inferred.null_values)
            lines.append(f"  # missing values written as {tokens} in number or date columns")
        lines.append(f"  - {_flow(_source_entry(draft_source))}")
    if draft.joins:
        base = draft.sources[0].inferred.label
        lines += ["", "combine:", "  method: join", f"  base: {_flow(base)}", "  joins:"]
        for key in draft.joins:
            join = {"source": key.source, "on": [key.column], "how": "left"}
            share = f"{key.overlap:.0%} of its {key.column} values are in {key.onto or base}"
            lines.append(f"    - {_flow(join)}   # {share}")
        for key in draft.other_keys:
            lines.append(
                f"  # also shared with {key.source}: {key.column} "
                f"({key.overlap:.0%} of values overlap)"
            )
    lines += ["", "columns:"]
    for column in draft.columns:
        entry, comment = _column_entry(column)
        text = f"  - {_flow(entry)}"
        lines.append(f"{text}   # {comment}" if comment else text)
    lines += ["", "models:"]
    for name, estimator, params in _MODELS[task]:
        model: dict[str, Any] = {"name": name, "estimator": estimator}
        if params:
            model["params"] = params
        lines.append(f"  - {_flow(model)}")
    lines += [
        "",
        *_split(draft),
        f"metric: {_METRIC[task]}",
        "",
    ]
    return "\n".join(lines)


def _unique_renames(columns: list[str], taken: list[str], key: str, label: str) -> dict[str, str]:
    """``column_label`` for each of ``columns`` already ``taken`` (other than the join ``key``),
    numbered ``column_label_2``, ``_3``... where that name is taken too."""
    used = set(taken) | set(columns)
    renamed: dict[str, str] = {}
    for column in columns:
        if column not in taken or column == key:
            continue
        new, number = f"{column}_{label}", 2
        while new in used:
            new, number = f"{column}_{label}_{number}", number + 1
        used.add(new)
        renamed[column] = new
    return renamed


def _keys_onto(joined: list[tuple[str, Any]], frame: Any, label: str) -> list[JoinKey]:
    """Candidate keys of ``frame`` with every source joined so far, best first, each column
    once (with the source it overlaps most)."""
    from mlship.data.infer import join_candidates, rank_keys

    best: dict[str, JoinKey] = {}
    for onto, other in joined:
        for key in join_candidates(other, frame, label, onto):
            if key.column not in best or key.overlap > best[key.column].overlap:
                best[key.column] = key
    return rank_keys(list(best.values()))


def build_draft(name: str, sources: list[tuple[Source, Any]], target: str | None) -> Draft:
    """The draft of ``sources`` (each with its raw Polars frame), the first one the base.

    Each other source is joined onto the table built so far, on the shared column whose values
    overlap most with any source already in it; a source sharing a key only with one given after
    it waits for that one. Columns a joined source shares with the table, other than its join
    key, are renamed ``column_source`` (numbered when that name is taken) so that the join keeps
    both. Without ``target`` the base source's last column is the target.
    """
    from mlship.data.infer import infer_source
    from mlship.errors import DataError

    base_source, base_frame = sources[0]
    base_label = base_source.label
    target = target or base_frame.columns[-1]
    seen: list[str] = list(base_frame.columns)
    joined: list[tuple[str, Any]] = [(base_label, base_frame)]
    drafts = [DraftSource(base_source, infer_source(base_label, base_frame, target))]
    joins: list[JoinKey] = []
    others: list[JoinKey] = []
    waiting = list(sources[1:])
    while waiting:
        found = [(i, _keys_onto(joined, frame, s.label)) for i, (s, frame) in enumerate(waiting)]
        ready = next(((i, keys) for i, keys in found if keys), None)
        if ready is None:
            onto = ", ".join(label for label, _ in joined)
            raise DataError(
                f"{waiting[0][0].label}: shares no column with overlapping values with "
                f"{onto} (the source(s) it could be joined onto), so it cannot be joined; "
                "give the key the same name in both"
            )
        index, keys = ready
        source, frame = waiting.pop(index)
        joins.append(keys[0])
        others.extend(keys[1:])
        renamed = _unique_renames(list(frame.columns), seen, keys[0].column, source.label)
        frame = frame.rename(renamed)
        joined.append((source.label, frame))
        inferred = infer_source(source.label, frame, target)
        drafts.append(DraftSource(source, inferred, tuple(renamed.items())))
        seen.extend(c for c in frame.columns if c not in seen)
    columns: list[InferredColumn] = []
    names: set[str] = set()
    for draft_source in drafts:
        for column in draft_source.inferred.columns:
            if column.name not in names:
                names.add(column.name)
                columns.append(column)
    if target not in names:
        raise DataError(
            f"--target {target!r}: no source has this column; the columns are: "
            f"{', '.join(sorted(names))}"
        )
    if not any(column.role == "feature" for column in columns):
        raise DataError(
            f"no column besides the target {target!r} can be a feature (the others look like "
            "ids or personal data); a model needs at least one feature column"
        )
    return Draft(spec_name(name), tuple(drafts), tuple(columns), tuple(joins), tuple(others))
