"""Spec models of the data side: sources, per-source mapping, combining, checks, transforms.

One concept per class; each field's description is what `mlship` documents to users. Behaviour
lives elsewhere (``mlship.data.*`` and ``mlship.features.*``); these classes only say what is valid.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ColumnType = Literal["integer", "float", "string", "category", "boolean", "datetime"]
Role = Literal["feature", "target", "id", "ignore", "pii", "weight"]
TargetTransform = Literal["log", "log1p", "yeo_johnson"]
SourceFormat = Literal["csv", "parquet", "json", "jsonl"]
Severity = Literal["error", "warn"]

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"

_SUFFIX_FORMATS: dict[str, SourceFormat] = {
    "csv": "csv",
    "parquet": "parquet",
    "pq": "parquet",
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- sources and mapping ---------------------------------------------------------------------


class UnitConversion(Strict):
    """Convert a numeric column between units of one dimension (``cents`` -> ``units``)."""

    from_unit: str = Field(alias="from", min_length=1)
    to_unit: str = Field(alias="to", min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Mapping(Strict):
    """How one source's columns become the dataset's columns, applied in this order."""

    rename: dict[str, str] = Field(
        default_factory=dict, description="Source column name -> dataset column name."
    )
    derive: dict[str, str] = Field(
        default_factory=dict,
        description="New column -> SQL expression over the (renamed) columns, e.g. `a / 100`.",
    )
    cast: dict[str, ColumnType] = Field(
        default_factory=dict, description="Column -> type, before the schema check."
    )
    units: dict[str, UnitConversion] = Field(
        default_factory=dict, description="Column -> unit conversion."
    )


class NewestBy(Strict):
    """Of the copies of a key, keep the one with the newest value of a column."""

    newest_by: str = Field(min_length=1, description="Column that orders the copies (newest wins).")


DuplicatePolicy = Literal["quarantine", "keep_first", "keep_last", "fail"] | NewestBy


class ValueFormats(Strict):
    """How a source's (or a column's) text values are written, for reading them as typed values.

    Every field is optional: a field left out on a column takes the source's setting, and one
    left out on the source takes the default. Only text values are affected; numbers, booleans and
    timestamps that the file format or database already types are taken as they are.
    """

    null_values: list[str] | None = Field(
        None,
        description='Values read as missing (compared after trimming spaces), e.g. ["n/a", "?", '
        '"-"]. Empty text is always missing for numbers, booleans and dates.',
    )
    thousands: str | None = Field(
        None, min_length=1, max_length=1, description='Digit-group separator removed, e.g. ",".'
    )
    decimal: str | None = Field(
        None, min_length=1, max_length=1, description='Decimal mark (default "."), e.g. ",".'
    )
    currency: list[str] | None = Field(
        None, description='Currency signs or codes removed from numbers, e.g. ["$", "EUR"].'
    )
    percent: Literal["number", "fraction"] | None = Field(
        None,
        description='A trailing "%" is accepted: `number` reads "12%" as 12, `fraction` as 0.12. '
        'Without it, "12%" is not a number.',
    )
    format: str | None = Field(
        None,
        min_length=1,
        description='strftime format of date/times, e.g. "%d/%m/%Y %H:%M" (default: ISO 8601).',
    )
    timezone: str | None = Field(
        None,
        description="IANA time zone of date/times written without an offset, e.g. Europe/Paris "
        "(default UTC). Values are always stored in UTC.",
    )

    @field_validator("null_values", "currency")
    @classmethod
    def _distinct(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("lists each value more than once")
        return values

    @field_validator("currency")
    @classmethod
    def _signs(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            if not value.strip() or any(char.isdigit() for char in value):
                raise ValueError(f"{value!r} is not a currency sign or code (no digits, not blank)")
        return values

    @field_validator("thousands", "decimal")
    @classmethod
    def _separator(cls, value: str | None) -> str | None:
        if value is not None and (value.isdigit() or value in "+-eE"):
            raise ValueError(f"{value!r} cannot separate digits; use e.g. ',' '.' ' ' or \"'\"")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/Paris"
            ) from None
        return value

    @model_validator(mode="after")
    def _separators_differ(self) -> ValueFormats:
        if self.thousands is not None and self.thousands == (self.decimal or "."):
            default = "" if self.decimal else " (`decimal` defaults to '.'; set it, e.g. ',')"
            raise ValueError(
                f"`thousands` and `decimal` are both {self.thousands!r}{default}; a number "
                "could not be read unambiguously, so they must differ"
            )
        return self

    def over(self, base: ValueFormats | None) -> ValueFormats:
        """These settings, with the ones left out taken from ``base`` (a column over its source).

        ``thousands`` and ``decimal`` go together: a column that sets either takes neither from
        the source, so a column written ``1.234,5`` in a source of ``1,234.5`` never ends up with
        the same mark for both.
        """
        if base is None:
            return self
        own = self.model_dump(exclude_unset=True, exclude_none=True)
        inherited = base.model_dump(exclude_none=True)
        if "thousands" in own or "decimal" in own:
            inherited.pop("thousands", None)
            inherited.pop("decimal", None)
        return ValueFormats.model_validate({**inherited, **own})


_RELATIVE = re.compile(r"^(\d+)(s|m|h|d)$")


def _a_bound(value: Any) -> Any:
    """A range bound as text: a date or date/time YAML read as one is written back in ISO 8601
    (so the spec's hash is stable); text must be ISO 8601 or an age such as ``30d``."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and not _RELATIVE.match(value.strip()):
        try:
            datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is neither a date/time (2026-11-01, 2026-11-01T12:00:00Z) nor an "
                "age (30d, 12h, 45m)"
            ) from None
    return value


class StreamRange(Strict):
    """The landed events of a stream (``mlship stream land``) appended, or timed when the stream
    spec has ``event_time``, in ``[since, until)``."""

    spec: str = Field(min_length=1, description="The stream spec, relative to this file.")
    since: str | None = Field(
        None,
        description="First instant in the range: a date (2026-11-01, midnight UTC), a "
        "date/time (naive ones are UTC) or an age back from now (30d, 12h); the first landed "
        "event when not given.",
    )
    until: str | None = Field(
        None,
        description="The instant the range stops before, written as `since`; now when not given.",
    )

    _bounds = field_validator("since", "until", mode="before")(_a_bound)


class Incremental(Strict):
    """A source that only grows, read from where the last ingest stopped (its high-water mark).

    Exactly one of: ``mode: append`` (a CSV or JSON-lines file written to at its end), ``key``
    (a query whose rows have an increasing key) or ``updated_at`` (a query whose rows carry the
    time they were last changed). Deleted rows are never seen: they stay in the dataset.
    """

    mode: Literal["append"] | None = Field(
        None,
        description="`append`: a file that only grows at its end (its new lines are read), or "
        "a folder (`path` ending in /) or glob (`exports/*.csv`) gaining files (new ones are "
        "read).",
    )
    key: str | None = Field(
        None,
        min_length=1,
        description="A column of the query (as it returns it) that only increases: rows with a "
        "larger value than the last ingest's largest are read.",
    )
    updated_at: str | None = Field(
        None,
        min_length=1,
        description="A column of the query (as it returns it) holding when the row last "
        "changed: rows changed since the last ingest (minus `overlap`) are read, and replace "
        "the rows with the same source `key`.",
    )
    overlap: str = Field(
        "5m",
        description="How far before the last ingest's newest `updated_at` to read again (rows "
        "committed late with an earlier time), e.g. 30s, 5m, 1h. Rows read twice are kept once.",
    )

    @field_validator("overlap")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _RELATIVE.match(value.strip()):
            raise ValueError(f"{value!r} is not a duration; expected e.g. 30s, 5m, 1h or 1d")
        return value.strip()

    @model_validator(mode="after")
    def _one_way(self) -> Incremental:
        given = [self.mode, self.key, self.updated_at]
        if sum(value is not None for value in given) != 1:
            raise ValueError(
                "`incremental` needs exactly one of `mode: append` (a growing file), `key` (an "
                "increasing column of a query) or `updated_at` (a query's change time column)"
            )
        return self

    @property
    def overlap_seconds(self) -> int:
        """``overlap`` in seconds."""
        found = _RELATIVE.match(self.overlap)
        assert found is not None
        return int(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]


class Source(Strict):
    """A file (local path or any fsspec URL), a SQL query or a landed stream to ingest.

    Relative paths are relative to the spec file. ``${VAR}`` in ``url`` is replaced by the
    environment variable VAR, so credentials stay out of the spec.
    """

    name: str | None = Field(None, pattern=NAME_PATTERN, description="Defaults to the file stem.")
    path: str | None = Field(None, min_length=1)
    format: SourceFormat | None = Field(None, description="Taken from the suffix when omitted.")
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV field separator.")
    encoding: str = Field("utf-8", description="Text encoding of CSV and JSON files.")
    values: ValueFormats | None = Field(
        None, description="How text values are written (null tokens, numbers, dates)."
    )
    query: str | None = Field(None, min_length=1, description="SQL query (needs `url`).")
    url: str | None = Field(None, min_length=1, description="SQLAlchemy URL for `query`.")
    stream: StreamRange | None = Field(
        None, description="The events of a stream landed by `mlship stream land`, in a range."
    )
    mapping: Mapping = Field(default_factory=Mapping)
    # -- duplicate keys within the source
    key: list[str] | None = Field(
        None,
        min_length=1,
        description="Columns (after mapping) that identify a record of this source. Rows "
        "sharing a key are resolved by `on_duplicate`; no key, no such step.",
    )
    incremental: Incremental | None = Field(
        None,
        description="Read only what the source added since the last ingest: `mode: append`, "
        "`key: COLUMN` or `updated_at: COLUMN` (see Incremental).",
    )
    on_duplicate: DuplicatePolicy = Field(
        "quarantine",
        description="Rows sharing a key whose values differ: `quarantine` every copy, "
        "`keep_first` or `keep_last` (file order), `{newest_by: column}`, or `fail`. Exact "
        "copies always collapse into one.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        kinds = [kind for kind in (self.path, self.query, self.stream) if kind is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a source needs exactly one of `path` (a file), `query` (SQL) or `stream` "
                "(landed events)"
            )
        if self.query is not None and self.url is None:
            raise ValueError("a `query` source needs `url`, the SQLAlchemy URL of the database")
        return self

    @model_validator(mode="after")
    def _incremental_fits(self) -> Source:
        growing = self.incremental
        if growing is None:
            return self
        if growing.mode == "append" and (
            self.path is None or self.resolved_format not in ("csv", "jsonl")
        ):
            raise ValueError(
                "`incremental: {mode: append}` reads the new lines of a growing CSV or JSON-lines "
                "file; this source is not one (a query takes `key` or `updated_at`)"
            )
        if growing.mode == "append" and self.encoding.lower().replace("_", "-").startswith(
            ("utf-16", "utf-32", "utf16", "utf32")
        ):
            raise ValueError(
                f"`incremental: {{mode: append}}` finds new lines by their newline byte, which "
                f"{self.encoding} does not write alone; convert the file to UTF-8"
            )
        if growing.mode is None and self.query is None:
            raise ValueError(
                "`incremental` `key` and `updated_at` are columns of a `query`; a growing file "
                "takes `mode: append`"
            )
        if growing.updated_at is not None and not self.key:
            raise ValueError(
                "`incremental: {updated_at: ...}` needs the source's `key`: a row changed again "
                "replaces the earlier copy with the same key"
            )
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.path:
            stem = self.path.rstrip("/").rsplit("/", 1)[-1]
            return stem.split(".", 1)[0] or stem
        if self.stream is not None:
            stem = self.stream.spec.rstrip("/").rsplit("/", 1)[-1]
            return stem.split(".", 1)[0] or stem
        return "query"

    @property
    def resolved_format(self) -> SourceFormat | None:
        if self.format is not None or self.path is None:
            return self.format
        suffix = self.path.rsplit(".", 1)[-1].lower() if "." in self.path else ""
        return _SUFFIX_FORMATS.get(suffix)


class Join(Strict):
    """Join one more source onto the table built so far."""

    source: str = Field(description="Name of the source to join.")
    on: list[str] = Field(min_length=1, description="Key columns present on both sides.")
    how: Literal["inner", "left"] = "left"
    asof: str | None = Field(
        None,
        description="Timestamp column for a point-in-time join: each row gets the newest "
        "matching row of `source` at or before its own timestamp (never a later one).",
    )
    tolerance: str | None = Field(None, description="Max age of an as-of match, e.g. `30d`.")


class Conflicts(Strict):
    """How rows of several sources with the same key are reduced to one."""

    key: list[str] = Field(min_length=1)
    rule: Literal["prefer", "newest"]
    prefer: list[str] = Field(
        default_factory=list, description="Source names, most trusted first (rule: prefer)."
    )
    timestamp: str | None = Field(None, description="Column that orders rows (rule: newest).")

    @model_validator(mode="after")
    def _rule_inputs(self) -> Conflicts:
        if self.rule == "prefer" and not self.prefer:
            raise ValueError("rule prefer needs `prefer`: source names, most trusted first")
        if self.rule == "newest" and not self.timestamp:
            raise ValueError("rule newest needs `timestamp`: the column that orders rows")
        return self


class Combine(Strict):
    """How several sources become one table: stacked (union) or joined on keys."""

    method: Literal["union", "join"] = "union"
    base: str | None = Field(None, description="Source the joins start from (default: first).")
    joins: list[Join] = Field(default_factory=list)
    conflicts: Conflicts | None = None


# -- checks ----------------------------------------------------------------------------------


class Outliers(Strict):
    method: Literal["iqr", "zscore"] = "iqr"
    threshold: float = Field(
        1.5, gt=0, description="IQR multiplier (iqr) or number of standard deviations (zscore)."
    )


class Distribution(Strict):
    """Compare the column with the same column of a reference dataset."""

    reference: str = Field(description="Path of a reference file, or a dataset hash (prefix).")
    max_psi: float = Field(0.2, gt=0, description="Largest population stability index allowed.")


class ColumnCheck(Strict):
    """One check of a column. Row checks quarantine rows (error) or count them (warn)."""

    min: float | None = Field(None, description="Smallest value allowed.")
    max: float | None = Field(None, description="Largest value allowed.")
    allowed: list[Any] | None = Field(None, description="The only values allowed.")
    regex: str | None = Field(None, description="A pattern every text value must match in full.")
    unique: bool = Field(False, description="No value occurs twice.")
    outliers: Outliers | None = Field(None, description="Values beyond the outlier fences.")
    max_missing: float | None = Field(None, ge=0, le=1, description="Largest share of nulls.")
    distribution: Distribution | None = Field(
        None, description="The column's distribution against a reference dataset's."
    )
    severity: Severity = Field(
        "error", description="error: failing rows are quarantined; warn: they are counted."
    )


class Rule(Strict):
    """A cross-column rule: a SQL boolean expression every row must satisfy."""

    name: str = Field(pattern=NAME_PATTERN)
    expr: str = Field(min_length=1)
    severity: Severity = "error"


class RowCount(Strict):
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class TableChecks(Strict):
    """Checks of the whole table, after the sources are combined."""

    rows: RowCount | None = Field(None, description="How many rows the table may have.")
    rules: list[Rule] = Field(default_factory=list, description="Cross-column rules.")
    duplicates: Literal["quarantine", "warn", "allow"] = Field(
        "quarantine", description="Rows identical to an earlier row."
    )
    unique: list[list[str]] = Field(
        default_factory=list, description="Column combinations that must be unique."
    )
    max_quarantine: float = Field(
        0.05, ge=0, le=1, description="The run fails when a larger share of rows is quarantined."
    )


# -- transforms ------------------------------------------------------------------------------


class Transform(Strict):
    """How a feature column is prepared for the model (compiled into its scikit-learn Pipeline)."""

    impute: Literal["median", "mean", "most_frequent", "constant", "none"] | None = None
    fill_value: Any = None
    cap: Outliers | None = Field(None, description="Clip values to the outlier fences.")
    scale: Literal["standard", "minmax", "robust", "none"] | None = None
    encode: Literal["onehot", "ordinal", "target"] | None = None
    parts: list[Literal["year", "month", "day", "dayofweek", "hour", "minute"]] | None = None
    text: list[Literal["length", "words", "tokens"]] | None = None
    max_tokens: int = Field(100, ge=1, le=10_000, description="Vocabulary size for `tokens`.")


class Column(Strict):
    """A column of the dataset: its type, role, nullability, checks and transform."""

    name: str = Field(min_length=1)
    type: ColumnType
    role: Role = "feature"
    nullable: bool = True
    values: ValueFormats | None = Field(
        None, description="How this column's text values are written; overrides the source's."
    )
    pii: Literal["hash", "drop"] = Field(
        "hash", description="For role pii: keyed HMAC-SHA256 pseudonym, or drop the column."
    )
    checks: list[ColumnCheck] = Field(default_factory=list)
    transform: Transform | None = None
    positive: str | int | bool | None = Field(
        None,
        description="For the target of a binary classification: the class that precision, "
        "recall, F1, PR-AUC and the decision threshold are about (the last class in sorted "
        "order when unset, as in scikit-learn).",
    )
    target_transform: TargetTransform | None = Field(
        None,
        description="For the target of a regression: the models learn `log` (targets > 0), "
        "`log1p` (targets >= 0) or `yeo_johnson` (any targets) of it; predictions and metrics "
        "are in the target's own units.",
    )
