"""Where a dataset's rows came from: one record per source, as stored with the dataset.

Inside mlship a record is a typed object; it becomes JSON only at the storage boundary (the
dataset's ``sources`` and the validation summary), in the same shape as always, so that datasets
stored by earlier versions read back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlship.errors import DataError


@dataclass(frozen=True)
class FileLineage:
    """A file source as read: where it is (password masked), its format, rows and bytes."""

    name: str
    path: str
    format: str
    rows: int
    sha256: str
    bytes: int
    kind: Literal["file"] = "file"

    @property
    def location(self) -> str:
        """How messages name where the source is."""
        return self.path

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "format": self.format,
            "rows": self.rows,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class QueryLineage:
    """A query source as run: the database (password masked), the query and the rows it gave."""

    name: str
    url: str
    query: str
    rows: int
    format: str = "sql"
    kind: Literal["query"] = "query"

    @property
    def location(self) -> str:
        """How messages name where the source is."""
        return self.url

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "query": self.query,
            "format": self.format,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class StreamLineage:
    """A landed stream as read: the stream spec, where its history is, the range and the
    events in it, and the fingerprint of those events (what makes the dataset's version)."""

    name: str
    stream: str
    spec: str
    where: str
    since: str | None
    until: str
    rows: int
    fingerprint: str
    format: str = "stream"
    kind: Literal["stream"] = "stream"

    @property
    def location(self) -> str:
        """How messages name where the source is."""
        return f"stream {self.stream} at {self.where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "stream": self.stream,
            "spec": self.spec,
            "where": self.where,
            "since": self.since,
            "until": self.until,
            "format": self.format,
            "rows": self.rows,
            "fingerprint": self.fingerprint,
        }


SourceLineage = FileLineage | QueryLineage | StreamLineage


def lineage_from_json(record: dict[str, Any]) -> SourceLineage:
    """A stored source record as its typed lineage; a record that is not one is refused with the
    key that is missing or wrong."""
    try:
        if record.get("kind") == "stream":
            return StreamLineage(
                name=str(record["name"]),
                stream=str(record["stream"]),
                spec=str(record["spec"]),
                where=str(record["where"]),
                since=None if record.get("since") is None else str(record["since"]),
                until=str(record["until"]),
                rows=int(record["rows"]),
                fingerprint=str(record["fingerprint"]),
            )
        if record.get("kind", "file") == "query":
            return QueryLineage(
                name=str(record["name"]),
                url=str(record["url"]),
                query=str(record["query"]),
                rows=int(record["rows"]),
                format=str(record.get("format", "sql")),
            )
        return FileLineage(
            name=str(record["name"]),
            path=str(record["path"]),
            format=str(record["format"]),
            rows=int(record["rows"]),
            sha256=str(record["sha256"]),
            bytes=int(record["bytes"]),
        )
    except KeyError as missing:
        raise DataError(
            f"stored source record {record!r} has no {missing.args[0]!r}; expected the fields "
            "a dataset's sources are recorded with"
        ) from None
    except (TypeError, ValueError) as exc:
        raise DataError(f"stored source record {record!r} is malformed: {exc}") from None
