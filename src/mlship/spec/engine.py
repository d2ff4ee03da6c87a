"""Spec models of where the data pipeline runs: the local engine (Polars) or Spark.

The same sources, mapping, typing and checks run on either; ``engine: spark`` compiles them to
Spark DataFrame operations so a data set that does not fit one machine can still be ingested.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from mlship.spec.data import Strict

Engine = Literal["local", "spark"]

_MASTER = re.compile(
    r"^(local(\[(\*|\d+)(,\d+)?\])?|spark://[^\s/]+(:\d+)?(,[^\s/]+(:\d+)?)*|yarn|k8s://\S+)$"
)


class SparkSettings(Strict):
    """Which Spark cluster runs ``engine: spark``, and any Spark configuration it needs.

    ``MLSHIP_SPARK_MASTER`` in the environment overrides ``master``, so one spec runs on a laptop
    (``local[*]``) and on a cluster without an edit.
    """

    master: str = Field(
        "local[*]",
        description='Spark master URL: "local[*]", "local[2]", "spark://host:7077", "yarn" or '
        '"k8s://https://host:443".',
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description='Spark configuration, e.g. {"spark.executor.memory": "4g"}.',
    )

    @field_validator("master")
    @classmethod
    def _master(cls, value: str) -> str:
        if not _MASTER.match(value.strip()):
            raise ValueError(
                f"{value!r} is not a Spark master URL; use local[*], local[N], "
                "spark://host:7077, yarn or k8s://https://host:port"
            )
        return value.strip()

    @field_validator("conf")
    @classmethod
    def _conf(cls, conf: dict[str, str]) -> dict[str, str]:
        for key in conf:
            if not key.startswith("spark."):
                raise ValueError(f"{key!r} is not a Spark setting (they start with `spark.`)")
            if key == "spark.master":
                raise ValueError("set the master with `master`, not in `conf`")
        return conf
