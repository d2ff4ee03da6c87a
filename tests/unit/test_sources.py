"""Reading sources: raw values, lineage, progress, and errors that say where and what."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import fsspec  # type: ignore[import-untyped, unused-ignore]
import pandas as pd
import polars as pl
import pytest

from mlship.data import sources
from mlship.data.sources import SourceData, read_rows, read_source, source_sha256
from mlship.errors import DataError
from mlship.spec.data import Source

CSV = 'id,code,amount,comment\n1,007,1.50,plain\n2,,2,"with, comma"\n3,010,x,\n'


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def _read(tmp_path: Path, name: str, content: str | bytes, **fields: str) -> SourceData:
    _write(tmp_path, name, content)
    return read_source(Source(path=name, **fields), tmp_path)


def _error(tmp_path: Path, name: str, content: str | bytes, **fields: str) -> str:
    with pytest.raises(DataError) as info:
        _read(tmp_path, name, content, **fields)
    message = str(info.value)
    label = Source(path=name, **fields).label
    assert message.startswith(f"{label} ({tmp_path / name}): "), message
    return message


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A private folder of fsspec's in-memory filesystem, removed afterwards."""
    root = f"memory://mlship-test-{uuid.uuid4().hex}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_values_stay_text_as_written(tmp_path: Path) -> None:
    data = _read(tmp_path, "orders.csv", CSV)
    assert data.label == "orders"
    assert data.frame.schema == pl.Schema(
        dict.fromkeys(["id", "code", "amount", "comment"], pl.String)
    )
    assert data.frame["code"].to_list() == ["007", None, "010"]
    assert data.frame["amount"].to_list() == ["1.50", "2", "x"]
    assert data.frame["comment"].to_list() == ["plain", "with, comma", None]
    assert data.line_offset == 2


def test_csv_lineage_records_the_file_and_its_hash(tmp_path: Path) -> None:
    path = _write(tmp_path, "orders.csv", CSV)
    data = read_source(Source(path="orders.csv", name="orders_2024"), tmp_path)
    assert data.label == "orders_2024"
    assert data.lineage == {
        "name": "orders_2024",
        "kind": "file",
        "path": str(path),
        "format": "csv",
        "rows": 3,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "bytes": path.stat().st_size,
    }


def test_csv_delimiter_and_encoding_come_from_the_spec(tmp_path: Path) -> None:
    content = "name;city\nJosé;Zürich\nRenée;Besançon\n".encode("latin-1")
    data = _read(tmp_path, "people.csv", content, delimiter=";", encoding="latin-1")
    assert data.frame.rows() == [("José", "Zürich"), ("Renée", "Besançon")]


def test_csv_byte_order_mark_and_windows_line_ends_are_not_data(tmp_path: Path) -> None:
    data = _read(tmp_path, "win.csv", "\ufeffa,b\r\n1,2\r\n3,4\r\n")
    assert data.frame.columns == ["a", "b"]
    assert data.frame.rows() == [("1", "2"), ("3", "4")]


def test_csv_with_only_a_header_is_an_empty_table(tmp_path: Path) -> None:
    data = _read(tmp_path, "empty.csv", "id,amount\n")
    assert data.frame.columns == ["id", "amount"]
    assert data.frame.height == 0
    assert data.lineage["rows"] == 0


def test_csv_blank_lines_at_the_end_are_ignored(tmp_path: Path) -> None:
    data = _read(tmp_path, "tail.csv", "a,b\n1,2\n\n\n")
    assert data.frame.rows() == [("1", "2")]


def test_csv_values_spanning_lines_keep_rows_but_drop_the_line_offset(tmp_path: Path) -> None:
    data = _read(tmp_path, "notes.csv", 'id,note\n1,"two\nlines"\n2,"say ""hi"""\n')
    assert data.frame.rows() == [("1", "two\nlines"), ("2", 'say "hi"')]
    assert data.line_offset is None


def test_csv_line_offset_counts_leading_blank_lines(tmp_path: Path) -> None:
    data = _read(tmp_path, "lead.csv", "\n\nid\n1\n")
    assert data.line_offset == 4


def test_file_progress_is_reported_in_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "BLOCK_BYTES", 100)
    content = "id,value\n" + "".join(f"{i},{i * 3}\n" for i in range(200))
    path = _write(tmp_path, "big.csv", content)
    calls: list[tuple[int, int | None]] = []
    data = read_source(
        Source(path="big.csv"), tmp_path, lambda done, total: calls.append((done, total))
    )
    size = path.stat().st_size
    assert data.frame.height == 200
    assert calls[0] == (0, size)
    assert calls[-1] == (size, size)
    assert len(calls) == 1 + -(-size // 100)  # the start, then one call per block
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


# -- JSON, JSON lines, Parquet -------------------------------------------------------------


def test_json_array_keeps_its_types(tmp_path: Path) -> None:
    data = _read(
        tmp_path, "items.json", '[{"id": 1, "price": 2.5, "ok": true}, {"id": 2, "ok": false}]'
    )
    assert data.frame.schema == pl.Schema({"id": pl.Int64, "price": pl.Float64, "ok": pl.Boolean})
    assert data.frame["price"].to_list() == [2.5, None]
    assert data.line_offset is None
    assert data.lineage["format"] == "json"


def test_jsonl_keeps_its_types_and_skips_blank_lines(tmp_path: Path) -> None:
    data = _read(tmp_path, "events.jsonl", '{"n": 1, "tag": "a"}\n\n{"n": 2, "tag": null}\n')
    assert data.frame.schema == pl.Schema({"n": pl.Int64, "tag": pl.String})
    assert data.frame.height == 2


def test_ndjson_suffix_is_json_lines(tmp_path: Path) -> None:
    data = _read(tmp_path, "events.ndjson", '{"n": 1}\n')
    assert data.lineage["format"] == "jsonl"


def test_parquet_keeps_its_types(tmp_path: Path) -> None:
    frame = pl.DataFrame({"id": [1, 2], "day": [date(2024, 1, 1), None], "x": [0.5, 1.5]})
    frame.write_parquet(tmp_path / "days.parquet")
    data = read_source(Source(path="days.parquet"), tmp_path)
    assert data.frame.equals(frame)
    assert data.lineage["rows"] == 2


def test_format_can_be_given_when_the_name_does_not_tell(tmp_path: Path) -> None:
    data = _read(tmp_path, "export.txt", "a|b\n1|2\n", format="csv", delimiter="|")
    assert data.frame.rows() == [("1", "2")]


# -- fsspec URLs -------------------------------------------------------------------------------


def test_memory_url_csv(memory_root: str) -> None:
    url = f"{memory_root}/in/orders.csv"
    with fsspec.open(url, "wb") as handle:
        handle.write(CSV.encode())
    data = read_source(Source(path=url), Path("/unused"))
    assert data.label == "orders"
    assert data.frame["code"].to_list() == ["007", None, "010"]
    assert data.lineage["path"] == url
    assert data.lineage["sha256"] == hashlib.sha256(CSV.encode()).hexdigest()


def test_memory_url_parquet(memory_root: str) -> None:
    frame = pl.DataFrame({"a": [1, 2, 3]})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    url = f"{memory_root}/t.parquet"
    with fsspec.open(url, "wb") as handle:
        handle.write(buffer.getvalue())
    assert read_source(Source(path=url), Path("/unused")).frame.equals(frame)


def test_file_url(tmp_path: Path) -> None:
    path = _write(tmp_path, "orders.csv", CSV)
    data = read_source(Source(path=path.as_uri()), Path("/unused"))
    assert data.frame.height == 3


def test_missing_memory_url_names_the_url(memory_root: str) -> None:
    url = f"{memory_root}/nope.csv"
    with pytest.raises(
        DataError, match=r"^nope \(memory://.*/nope\.csv\): the file does not exist"
    ):
        read_source(Source(path=url), Path("/unused"))


def test_unknown_url_scheme(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"^x \(nosuch://bucket/x\.csv\): cannot open this location"
    ):
        read_source(Source(path="nosuch://bucket/x.csv"), tmp_path)


def test_credentials_in_a_file_url_are_masked(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        read_source(Source(path="nosuch://user:hunter22@host/x.csv"), tmp_path)
    assert "hunter22" not in str(info.value)
    assert str(info.value).startswith("x (nosuch://user:***@host/x.csv): ")


def test_fingerprint_of_a_file_source(tmp_path: Path) -> None:
    path = _write(tmp_path, "orders.csv", CSV)
    digest = source_sha256(Source(path="orders.csv"), tmp_path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("nosuch://user:hunter22@host/x.csv", "x (nosuch://user:***@host/x.csv): cannot open"),
        ("data/nope.csv", "nope (TMP/data/nope.csv): the file does not exist"),
    ],
)
def test_fingerprint_fails_as_reading_does(tmp_path: Path, path: str, expected: str) -> None:
    """The ingest cache hashes files before reading them: its errors must be as clear."""
    with pytest.raises(DataError) as info:
        source_sha256(Source(path=path), tmp_path)
    assert str(info.value).startswith(expected.replace("TMP", str(tmp_path)))
    assert "hunter22" not in str(info.value)


# -- file errors -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        read_source(Source(path="data/nope.csv"), tmp_path)
    assert str(info.value) == f"nope ({tmp_path / 'data' / 'nope.csv'}): the file does not exist"


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "data.csv").mkdir()
    with pytest.raises(DataError, match=r"is a directory; expected a file"):
        read_source(Source(path="data.csv"), tmp_path)


@pytest.mark.parametrize("name", ["e.csv", "e.json", "e.jsonl", "e.parquet"])
def test_empty_file_has_no_rows(tmp_path: Path, name: str) -> None:
    assert "the file is empty (0 bytes), so it has no rows" in _error(tmp_path, name, b"")


def test_whitespace_only_csv(tmp_path: Path) -> None:
    assert "no header and no rows" in _error(tmp_path, "w.csv", "\n\n")


def test_truncated_last_row_names_its_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "cut.csv", "a,b,c\n1,2,3\n4,5,6\n7,8")
    assert "line 4 has 2 field(s), but the header has 3" in message
    assert "truncated" in message


def test_row_with_too_many_fields_names_its_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "wide.csv", "a,b\n1,2\n3,4,5\n6,7\n")
    assert "line 3 has 3 fields, but the header has 2" in message
    assert "unquoted ','" in message


def test_bad_row_after_a_multiline_value_names_its_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "notes.csv", 'id,note\n1,"two\nlines"\n2\n')
    assert "line 4 has 1 field(s), but the header has 2" in message


def test_blank_line_between_rows(tmp_path: Path) -> None:
    assert "line 3 is empty" in _error(tmp_path, "gap.csv", "a,b\n1,2\n\n3,4\n")


def test_unclosed_quote_names_its_line_and_column(tmp_path: Path) -> None:
    message = _error(tmp_path, "quote.csv", 'a,b\n1,2\n3,"open\n')
    assert "line 3, column 'b': the quoted value is never closed" in message
    assert "truncated" in message


def test_unclosed_quote_after_quoted_values_spanning_lines(tmp_path: Path) -> None:
    message = _error(tmp_path, "quote.csv", 'a,b,c\n"x\ny",1,2\n3,4,"""ok"" then open\n')
    assert "line 4, column 'c': the quoted value is never closed" in message


def test_text_after_a_closing_quote_names_line_and_column(tmp_path: Path) -> None:
    message = _error(tmp_path, "quote.csv", 'a,b,c\n1,"two"x,3\n')
    assert "line 2, column 'b': " in message
    assert "a quoted value must end with a quote followed by ','" in message


def test_incomplete_row_names_the_columns_without_a_value(tmp_path: Path) -> None:
    message = _error(tmp_path, "cut.csv", "a,b,c,d\n1,2,3,4\n5,6")
    assert "no value for column(s) 'c', 'd'" in message


def test_duplicate_column_names(tmp_path: Path) -> None:
    assert "names column 'a' more than once" in _error(tmp_path, "dup.csv", "a,b,a\n1,2,3\n")


def test_latin1_bytes_in_a_utf8_file(tmp_path: Path) -> None:
    content = "name,city\nAnn,Paris\nJosé,Zürich\n".encode("latin-1")
    message = _error(tmp_path, "people.csv", content)
    assert "line 3, column 'name' is not valid UTF-8 (byte 0xe9" in message
    assert "encoding: latin-1" in message


def test_wrong_encoding_in_a_quoted_value_names_its_column(tmp_path: Path) -> None:
    content = 'id;note;city\n1;"a; b";Zürich\n'.encode("cp1252")
    message = _error(tmp_path, "people.csv", content, delimiter=";")
    assert "line 2, column 'city' is not valid UTF-8 (byte 0xfc" in message


def test_wrong_encoding_in_the_header_names_the_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "people.csv", "name,straße\nAnn,1\n".encode("latin-1"))
    assert ": line 1 is not valid UTF-8 (byte 0xdf" in message


def test_unknown_encoding(tmp_path: Path) -> None:
    assert "unknown encoding 'klingon'" in _error(tmp_path, "a.csv", "a\n1\n", encoding="klingon")


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    message = _error(tmp_path, "bad.json", '[\n  {"a": 1},\n  {"a": }\n]')
    assert "invalid JSON at line 3, column 9" in message


def test_json_that_is_not_an_array(tmp_path: Path) -> None:
    message = _error(tmp_path, "obj.json", '{"a": 1}')
    assert "expected a JSON array of objects" in message
    assert "format: jsonl" in message


def test_json_array_of_non_objects(tmp_path: Path) -> None:
    assert "item 0 of the array is a number" in _error(tmp_path, "nums.json", "[1, 2]")


def test_invalid_jsonl_names_the_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "bad.jsonl", '{"a": 1}\n\n{"a": 2\n{"a": 3}\n')
    assert "line 3 is not valid JSON" in message


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    message = _error(tmp_path, "list.jsonl", '{"a": 1}\n[2]\n')
    assert "line 2 is an array; expected one object per line" in message


def test_corrupt_parquet(tmp_path: Path) -> None:
    message = _error(tmp_path, "broken.parquet", b"PAR1 this is not really parquet PAR1")
    assert "is not a valid Parquet file" in message


def test_truncated_parquet(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"a": list(range(1000))}).write_parquet(buffer)
    message = _error(tmp_path, "cut.parquet", buffer.getvalue()[:-100])
    assert "is not a valid Parquet file" in message


def test_unknown_format(tmp_path: Path) -> None:
    message = _error(tmp_path, "data.xlsx", b"PK")
    assert "cannot tell the file format from its name" in message
    assert "csv, parquet, json, jsonl" in message


# -- SQL errors that need no server ------------------------------------------------------------


def _query_error(url: str, tmp_path: Path, query: str = "SELECT 1") -> str:
    with pytest.raises(DataError) as info:
        read_source(Source(name="db", query=query, url=url), tmp_path)
    return str(info.value)


def test_invalid_database_url(tmp_path: Path) -> None:
    message = _query_error("not a url", tmp_path)
    assert message.startswith("db (not a url): is not a valid SQLAlchemy URL")


def test_unknown_database_dialect_masks_the_password(tmp_path: Path) -> None:
    message = _query_error("nosuchdb://me:s3cret-pw@host/db", tmp_path)
    assert message.startswith("db (nosuchdb://me:***@host/db): no database driver for 'nosuchdb'")
    assert "s3cret-pw" not in message


def test_missing_sqlite_file_is_neither_created_nor_opened(tmp_path: Path) -> None:
    message = _query_error("sqlite:///x.db", tmp_path)
    assert message == f"db (sqlite:///{tmp_path}/x.db): the database file does not exist"
    assert not (tmp_path / "x.db").exists()


def test_sqlite_url_naming_a_directory(tmp_path: Path) -> None:
    (tmp_path / "x.db").mkdir()
    message = _query_error("sqlite:///x.db", tmp_path)
    assert message.endswith(": is a directory; expected a SQLite database file")


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "x.db").write_text("id,name\n1,Ann\n")
    message = _query_error("sqlite:///x.db", tmp_path, "SELECT * FROM people")
    assert message.startswith(f"db (sqlite:///{tmp_path}/x.db): ")
    assert "not a database" in message


def test_unset_environment_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLSHIP_TEST_UNSET_PW", raising=False)
    message = _query_error("postgresql://me:${MLSHIP_TEST_UNSET_PW}@host/db", tmp_path)
    assert message.startswith("db (postgresql://me:***@host/db): ")
    assert "environment variable MLSHIP_TEST_UNSET_PW is not set" in message


def test_sql_syntax_error_from_the_database(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "x.db").close()
    message = _query_error(f"sqlite:///{tmp_path}/x.db", tmp_path, "SELEC 1")
    assert message.startswith(f"db (sqlite:///{tmp_path}/x.db): the query failed: ")
    assert "syntax error" in message


# -- the older call forms ----------------------------------------------------------------------


def test_read_rows_keeps_text_for_pandas(tmp_path: Path) -> None:
    path = _write(tmp_path, "orders.csv", CSV)
    frame = read_rows(path, "csv").frame.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert frame["code"].iloc[0] == "007"
    assert pd.isna(frame["code"].iloc[1])


def test_read_rows_takes_a_delimiter(tmp_path: Path) -> None:
    path = _write(tmp_path, "semi.csv", "a;b\n1;2\n")
    frame = read_rows(path, "csv", ";").frame.to_pandas()
    assert frame.to_dict("list") == {"a": ["1"], "b": ["2"]}


# -- mixed types and line provenance -----------------------------------------------------------


def test_json_rows_know_the_line_their_object_starts_on(tmp_path: Path) -> None:
    data = _read(
        tmp_path,
        "items.json",
        '[\n  {"id": 1},\n  {\n    "id": 2\n  },\n\n  {"id": 3}\n]\n',
    )
    assert data.frame["id"].to_list() == [1, 2, 3]
    assert data.unit == "line"
    assert data.places().to_list() == [2, 3, 7]


def test_jsonl_rows_know_their_line_past_blank_lines(tmp_path: Path) -> None:
    data = _read(tmp_path, "events.jsonl", '\n{"n": 1}\n\n\n{"n": 2}\n')
    assert data.places().to_list() == [2, 5]


def test_csv_rows_know_their_line_when_a_value_spans_lines(tmp_path: Path) -> None:
    data = _read(tmp_path, "notes.csv", 'id,note\n1,"a\nb"\n2,c\n3,"d\n\ne"\n4,f\n')
    assert data.line_offset is None
    assert data.places().to_list() == [2, 4, 5, 8]


def test_json_columns_mixing_types_are_text_as_written(tmp_path: Path) -> None:
    """Polars refuses these files whole; each column that mixes types is text instead."""
    content = (
        '{"n": 1, "b": true, "o": {"x": 1}, "s": "a"}\n'
        '{"n": "n/a", "b": 2, "o": [1, 2], "s": "b"}\n'
        '{"n": 2.5, "b": null, "o": null, "s": "c"}\n'
    )
    for name, text in (
        ("mixed.jsonl", content),
        ("mixed.json", "[" + ",".join(content.strip().split("\n")) + "]"),
    ):
        frame = _read(tmp_path, name, text).frame
        assert frame.schema == pl.Schema(
            {"n": pl.String, "b": pl.String, "o": pl.String, "s": pl.String}
        ), name
        assert frame.rows() == [
            ("1", "true", '{"x": 1}', "a"),
            ("n/a", "2", "[1, 2]", "b"),
            ("2.5", None, None, "c"),
        ], name


def test_broken_json_arrays_name_line_and_column(tmp_path: Path) -> None:
    trailing = _error(tmp_path, "t.json", '[\n  {"a": 1},\n]\n')
    assert "invalid JSON at line 3, column 1: Expecting value" in trailing
    unclosed = _error(tmp_path, "u.json", '[\n  {"a": 1}\n  {"a": 2}\n]')
    assert "invalid JSON at line 3, column 3: Expecting ',' delimiter" in unclosed
    after = _error(tmp_path, "x.json", '[{"a": 1}]\n{"b": 2}\n')
    assert "invalid JSON at line 2, column 1: Extra data" in after
    item = _error(tmp_path, "i.json", '[\n  {"a": 1},\n  "x"\n]')
    assert "item 1 of the array is a string (line 3); expected an object per row" in item


def test_a_sqlite_column_mixing_types_is_text(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        connection.execute("CREATE TABLE t (n INTEGER, ok INTEGER)")
        connection.executemany("INSERT INTO t VALUES (?, ?)", [(1, 1), ("n/a", 0), (2.5, "yes")])
    connection.close()
    data = read_source(
        Source(name="db", query="SELECT * FROM t ORDER BY rowid", url="sqlite:///db.sqlite"),
        tmp_path,
    )
    assert data.frame.rows() == [("1", "1"), ("n/a", "0"), ("2.5", "yes")]
    assert data.unit == "row" and data.places().to_list() == [1, 2, 3]


def test_query_batches_that_disagree_on_a_type_are_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from mlship.data import sources

    monkeypatch.setattr(sources, "BATCH_ROWS", 2)
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        connection.execute("CREATE TABLE t (n, flag)")
        connection.executemany(
            "INSERT INTO t VALUES (?, ?)",
            [(1, "yes"), (2, "no"), ("n/a", 1), ("x", 0), (2.5, None), (None, "true")],
        )
    connection.close()
    data = read_source(
        Source(name="db", query="SELECT * FROM t ORDER BY rowid", url="sqlite:///db.sqlite"),
        tmp_path,
    )
    assert data.frame.schema == pl.Schema({"n": pl.String, "flag": pl.String})
    assert data.frame.rows() == [
        ("1", "yes"), ("2", "no"), ("n/a", "1"), ("x", "0"), ("2.5", None), (None, "true"),
    ]  # fmt: skip
