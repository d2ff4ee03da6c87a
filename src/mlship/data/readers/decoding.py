"""Bytes to text, with a wrong encoding reported where it shows and with the way to fix it."""

from __future__ import annotations

import codecs
import csv

from mlship.errors import DataError


def decode(
    data: bytes, encoding: str, prefix: str, delimiter: str | None = None, option: str | None = None
) -> str:
    """The file's text without a byte order mark; a wrong encoding is reported with its line
    (and, given the CSV ``delimiter``, its column), its byte offset and the way to fix it: the
    source's ``encoding:``, or the command-line ``option`` when one is given."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        setting = f"`{option}`" if option else "`encoding:`"
        raise DataError(
            f"{prefix}: unknown encoding {encoding!r}; set {setting} to a codec name such as "
            "utf-8, latin-1 or cp1252"
        ) from None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
        where = f"line {line}"
        column = _csv_column_at(data, exc.start, codec, delimiter) if delimiter else None
        if column is not None:
            where += f", column {column!r}"
        byte = data[exc.start]
        if codec == "utf-8":
            fix = (
                f"pass it, e.g. `{option} latin-1` or `{option} cp1252`"
                if option
                else "set it on the source, e.g. `encoding: latin-1` or `encoding: cp1252`"
            )
            raise DataError(
                f"{prefix}: {where} is not valid UTF-8 (byte 0x{byte:02x} at offset "
                f"{exc.start}); if the file uses another encoding, {fix}"
            ) from None
        check = f"`{option}`" if option else "`encoding:` on the source"
        raise DataError(
            f"{prefix}: {where} is not valid {encoding} (byte 0x{byte:02x} at offset "
            f"{exc.start}: {exc.reason}); check {check}"
        ) from None
    return text.removeprefix("\ufeff")


def _csv_column_at(data: bytes, offset: int, codec: str, delimiter: str) -> str | None:
    """The header name of the CSV field holding byte ``offset``; None within the header itself.

    Only the line of ``offset`` is looked at (quote-aware), so that locating a bad byte near the
    end of a large file stays cheap; a quoted value spanning lines may misplace the column.
    """
    line_start = data.rfind(b"\n", 0, offset) + 1
    if line_start == 0:
        return None
    header_line = data[: data.find(b"\n")].decode(codec, errors="replace")
    header_line = header_line.removeprefix("\ufeff").rstrip("\r")
    header = next(csv.reader([header_line], delimiter=delimiter))
    index = _field_index(data[line_start:offset].decode(codec, errors="replace"), delimiter)
    return header[index] if index < len(header) else None


def _field_index(text: str, delimiter: str) -> int:
    """Which field (0-based) the end of ``text``, the start of a CSV line, is in."""
    index, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            index += 1
    return index
