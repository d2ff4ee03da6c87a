"""Read file sources into Spark with the local engine's bookkeeping: each row's source, its
place (``line N`` of a CSV, ``row N`` of a Parquet file) and its order in the table.

CSV values stay text, as locally, so that typing sees what the file says. A row's place is its
position in the file: Spark numbers rows within each partition (``monotonically_increasing_id``
holds the partition in its upper bits), and one small job counts each partition's rows, so the
numbering is exact without moving the rows to one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlship.data.fingerprint import location_of
from mlship.data.lineage import FileLineage
from mlship.data.readers.location import sha256_of
from mlship.data.readers.masking import mask_text
from mlship.data.readers.messages import first_line
from mlship.data.sources import BLOCK_BYTES
from mlship.data.tracking import ROW, SOURCE
from mlship.errors import DataError
from mlship.spec.data import Source

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ORDER = "_order"
"""A row's position in the combined table (source by source, in spec order)."""
_PARTITION_BITS = 33  # monotonically_increasing_id: partition << 33 | row within partition
_CSV_FIRST_LINE = 2  # the header is line 1


@dataclass(frozen=True)
class SparkSource:
    """One source as Spark reads it, and its lineage as the dataset records it."""

    label: str
    frame: DataFrame
    origin: FileLineage
    rows: int


def _numbered(frame: DataFrame) -> tuple[DataFrame, int]:
    """``frame`` with ``_index``: each row's 0-based position in the file; and the row count."""
    from pyspark.sql import functions as F

    ids = frame.withColumn("_id", F.monotonically_increasing_id())
    partition = F.shiftright(F.col("_id"), _PARTITION_BITS)
    counts = sorted(ids.groupBy(partition.alias("p")).count().collect())
    offsets: dict[int, int] = {}
    total = 0
    for part, count in counts:
        offsets[int(part)] = total
        total += int(count)
    if not offsets:
        return ids.withColumn("_index", F.lit(0).cast("bigint")).drop("_id"), 0
    offset = F.element_at(
        F.create_map(*(F.lit(v) for pair in offsets.items() for v in pair)), partition
    )
    within = F.col("_id") - F.shiftleft(partition, _PARTITION_BITS)
    return ids.withColumn("_index", offset + within).drop("_id"), total


def read_spark_source(spark: SparkSession, source: Source, base_dir: Path) -> SparkSource:
    """Read ``source`` (a CSV or Parquet file) with ``_source``, ``_row`` and ``_index``."""
    from pyspark.sql import functions as F

    location = location_of(source.path or "", base_dir)
    shown = f"{source.label} ({mask_text(location)})"
    sha256 = sha256_of(location, shown, BLOCK_BYTES)  # also refuses a missing file, by name
    fmt = source.resolved_format or "csv"
    try:
        if fmt == "csv":
            frame = spark.read.csv(
                location,
                header=True,
                inferSchema=False,
                sep=source.delimiter,
                quote='"',
                escape='"',
                mode="FAILFAST",
                multiLine=False,
            )
        else:
            frame = spark.read.parquet(location)
        numbered, rows = _numbered(frame)
    except Exception as exc:  # Spark reports a bad file as one of many JVM errors
        raise DataError(f"{shown}: cannot be read by Spark: {first_line(exc)}") from None
    unit, first = ("line", _CSV_FIRST_LINE) if fmt == "csv" else ("row", 1)
    place = F.concat(F.lit(f"{unit} "), (F.col("_index") + first).cast("string"))
    tracked = numbered.withColumn(SOURCE, F.lit(source.label)).withColumn(ROW, place)
    size = Path(location).stat().st_size if "://" not in location else 0
    origin = FileLineage(
        name=source.label, path=mask_text(location), format=fmt, rows=rows, sha256=sha256,
        bytes=size,
    )  # fmt: skip
    return SparkSource(source.label, tracked, origin, rows)
