"""One Spark session per process, built from the spec's ``spark`` settings.

Spark allows one active session per JVM; asking twice with other settings would silently return
the first. The session is therefore built once, and a later request for another master is
refused rather than run somewhere the spec did not say.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

from mlship.errors import DataError
from mlship.spec.engine import SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MASTER_ENV = "MLSHIP_SPARK_MASTER"
"""Overrides the spec's ``spark.master`` (the same spec on a laptop and on a cluster)."""

_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",
    # Every timestamp is UTC, as the local engine stores them.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def master_of(settings: SparkSettings | None) -> str:
    """The master URL: the environment's override, else the spec's, else ``local[*]``."""
    configured = os.environ.get(MASTER_ENV, "").strip()
    if configured:
        return SparkSettings(master=configured).master  # validated as the spec's would be
    return (settings or SparkSettings()).master


def spark_session(settings: SparkSettings | None) -> SparkSession:
    """The process's Spark session, started with ``settings`` on first use."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError(
            "engine: spark needs pyspark; install it with `pip install 'mlship[spark]'`"
        ) from None
    master = master_of(settings)
    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if running != master:
            raise DataError(
                f"a Spark session on {running} is already running in this process; "
                f"cannot also run on {master}"
            )
        return active
    builder = SparkSession.builder.master(master).appName("mlship")
    # Local executors run this very interpreter, which has mlship and its dependencies; a
    # cluster's Python is the cluster's (``spark.pyspark.python`` in ``conf`` to choose it).
    # (PySpark reads the executors' Python from PYSPARK_PYTHON when the session starts.)
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in {**_DEFAULTS, **(settings.conf if settings else {})}.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM's failures are of many kinds; all mean "no Spark"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot start Spark on {master}: {first}") from None


_PYTHON_ERROR = re.compile(r"^\w+(Error|Exception|Exit)\b.*")


def spark_message(exc: BaseException) -> str:
    """What went wrong, in one line: for a failure in an executor's Python, its own error (the
    last line of its traceback), not Spark's wrapping of it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    python = [line for line in lines if _PYTHON_ERROR.match(line)]
    if python:
        return python[-1]
    return lines[0] if lines else type(exc).__name__
