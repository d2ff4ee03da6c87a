"""``mlship init``: read data files and write a first, commented pipeline spec for them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from mlship.cli.console import out
from mlship.errors import MlshipError
from mlship.spec.data import Source


class InitError(MlshipError):
    """The spec could not be written (the file exists, or the draft did not validate)."""


def _locations(data: str, spec_dir: Path) -> tuple[str, str]:
    """Where to read ``data`` now, and how the spec names it: relative to the spec's folder for
    a local file (the spec moves with its data), as given for a URL (``s3://...``)."""
    if "://" in data:
        return data, data
    local = Path(data).resolve()
    try:
        return str(local), os.path.relpath(local, spec_dir)
    except ValueError:  # another drive
        return str(local), str(local)


_SQLITE_RELATIVE = re.compile(r"^sqlite:///(?!/)(?P<path>[^?]+)")
_TABLE = re.compile(r"\bfrom\s+([A-Za-z][A-Za-z0-9_]*)", re.IGNORECASE)


def _query_source(data: str, spec_dir: Path) -> tuple[Source, Source] | None:
    """``URL#QUERY`` as the source to read now and the one the spec declares (None when ``data``
    is not one). A relative SQLite file is relative to the working folder here, so the spec names
    it relative to its own folder, as it does files."""
    from mlship.data.draft import spec_name

    url, hash_sign, query = data.partition("#")
    if not hash_sign or "://" not in url or not query.strip():
        return None
    table = _TABLE.search(query)
    name = spec_name(table.group(1)) if table else "query"
    local = _SQLITE_RELATIVE.match(url)
    in_spec = url
    if local is not None:
        database, rest = Path(local.group("path")).resolve(), url[local.end() :]
        url = f"sqlite:///{database}{rest}"
        try:
            in_spec = f"sqlite:///{os.path.relpath(database, spec_dir)}{rest}"
        except ValueError:  # another drive
            in_spec = url
    return (
        Source(name=name, url=url, query=query.strip()),
        Source(name=name, url=in_spec, query=query.strip()),
    )


def init(
    data: Annotated[
        list[str],
        typer.Argument(
            help="Data files or URLs (csv, parquet, json, jsonl), or SQL as 'URL#QUERY'."
        ),
    ],
    target: Annotated[
        str | None, typer.Option("--target", help="Column to predict (default: the last one).")
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Spec file to write.")] = Path(
        "pipeline.yaml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing spec.")] = False,
    encoding: Annotated[
        str, typer.Option(help="Text encoding of CSV and JSON files, e.g. latin-1.")
    ] = "utf-8",
    delimiter: Annotated[str, typer.Option(help="CSV field separator, e.g. ';'.")] = ",",
) -> None:
    """Infer types, roles and checks from data files and write a spec that `mlship run` accepts."""
    from mlship.data.draft import build_draft, render
    from mlship.data.sources import read_source
    from mlship.spec.loader import parse_spec

    if output.exists() and not force:
        raise InitError(f"{output} exists; pass --force to overwrite it")
    spec_dir = output.resolve().parent
    read = []
    for item in data:
        query = _query_source(item, spec_dir)
        if query is not None:
            read.append((query[1], read_source(query[0], Path.cwd()).frame))
            continue
        now, in_spec = _locations(item, spec_dir)
        options = {"encoding": encoding, "delimiter": delimiter}
        if Source(path=in_spec).resolved_format != "csv":
            options.pop("delimiter")
        frame = read_source(Source(path=now, **options), Path.cwd()).frame
        read.append((Source(path=in_spec, **options), frame))
    draft = build_draft(read[0][0].label, read, target)
    command = " ".join(["mlship init", *data])
    text = render(draft, command)
    parse_spec(text, output.resolve())  # what is written is what `mlship run` accepts
    from mlship.store.artifacts import atomic_write

    atomic_write(output, [text.encode("utf-8")])
    columns = draft.columns
    roles = {role: [c.name for c in columns if c.role == role] for role in ("id", "pii")}
    target_name = next(c.name for c in columns if c.role == "target")
    out.print(
        f"Wrote {output}: {draft.task}, target {target_name}, {len(columns)} columns from "
        f"{len(draft.sources)} source(s)"
    )
    for role, names in roles.items():
        if names:
            out.print(f"  {role}: {', '.join(names)}")
    out.print(f"Review it, then: mlship run {output}")
