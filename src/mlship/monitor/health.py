"""Operational health of served models, read from the prediction log, and anomalies in its series.

The prediction log (:mod:`mlship.monitor.predlog`) holds one row per scored record, and one
``error`` row per request routed to a version and then refused (4xx) or failed (5xx). Health is
counted in **requests**, not records: rows are reduced to one per request (request id, role and
append time: a caller may reuse an ``X-Request-Id``, the rows of one request share their time).

Only what callers got counts: roles ``route`` (answers), ``stream`` (events a stream runner
scored, each a request) and ``error`` (a stream's dead letters among them). Shadows are left
out: their latency is measured off the request path, in a thread pool, and their failures are
not logged, so a shadow's "error rate" would always read 0. ``batch`` rows (``mlship
predict``) are left out too.

Figures, per (model, version) and time bucket (:func:`health_series`) or over the latest window
(:func:`health_summary`):

- ``requests``, ``errors`` (every status but 200), ``server_errors`` (5xx: the model or server
  failed, not the caller's input), ``error_rate`` (errors / requests, null without requests),
  ``server_error_rate``;
- ``throughput_rps``: requests per second over the bucket (window);
- ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``: percentiles (linear interpolation,
  numpy's default) of the latency of successful requests; null when there is none.

Anomalies (:func:`anomalies`) are points far from an exponentially weighted moving average, in
units of an exponentially weighted moving standard deviation, both taken *before* the point.
:func:`flag_anomalies` applies it to the p99 latency (up only), the error rate (up only) and the
throughput (both ways: a drop is an outage, a surge is load).

Everything here is computation on a log already read (:func:`mlship.monitor.predlog.read_log` gives
a PyArrow table; a Polars frame is accepted as well); nothing is read or written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from mlship.errors import DataError

Direction = Literal["up", "down"]

REQUEST_ROLES = ("route", "stream", "error")
"""Roles that are requests a caller sent: answers, scored stream events and errors."""

OK = 200
KEYS = ("model", "version")
METRICS = (
    "requests",
    "errors",
    "server_errors",
    "error_rate",
    "server_error_rate",
    "throughput_rps",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)
"""Columns of :func:`health_series` after ``model``, ``version`` and ``at`` (bucket start)."""

PERCENTILES = {"latency_p50_ms": 0.5, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}

WATCHED: dict[str, Literal["up", "both"]] = {
    "latency_p99_ms": "up",
    "error_rate": "up",
    "throughput_rps": "both",
}
"""Metrics :func:`flag_anomalies` watches and the direction that is a problem: faster answers and
fewer errors are not."""

RELATIVE_FLOOR = 0.1
"""Smallest standard deviation, as a share of the expected value: in a flat series a point must be
more than ``threshold`` x 10 % (30 % by default) off the level to be anomalous, so a perfectly
steady series does not flag tiny noise."""

ERROR_RATE_FLOOR = 0.01
"""Smallest standard deviation of the error rate (one percentage point): a rate that has always
been 0 has no relative floor, and 1 failed request out of 1000 is not an anomaly."""

REQUESTS_FLOOR = 1.0
"""Smallest standard deviation of the request count per bucket: a model with no traffic, then
one request, is not a surge."""

MIN_REQUESTS = 10
"""Buckets with fewer requests than this are not checked (nor learnt from) for the p99 latency and
the error rate: the p99 of three requests is their maximum, and one error in two requests is a 50 %
rate. Their throughput is checked (few requests is what a drop looks like)."""


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anomaly:
    """A point far from what the series led to expect: ``expected`` is the moving average before
    the point and ``z`` the signed distance from it in moving standard deviations (positive
    ``up``). ``time`` is set when times were given."""

    index: int
    time: datetime | None
    value: float
    expected: float
    z: float
    direction: Direction

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the log, one row per request ------------------------------------------------------------


def _as_polars(log: pl.DataFrame | pa.Table) -> pl.DataFrame:
    """The columns health needs, as Polars; ``status`` is 200 where the log predates it."""
    needed = ["request_id", "at", "model", "version", "role", "latency_ms", "status"]
    if isinstance(log, pa.Table):
        log = pl.from_arrow(log.select([c for c in needed if c in log.column_names]))
        assert isinstance(log, pl.DataFrame)
    if not isinstance(log, pl.DataFrame):
        raise TypeError(f"the log must be a Polars DataFrame or a PyArrow Table, got {type(log)}")
    if "status" not in log.columns:
        log = log.with_columns(status=pl.lit(OK, pl.Int16))
    missing = [c for c in needed if c not in log.columns]
    if missing:
        raise DataError(f"the prediction log lacks the column(s) {', '.join(missing)}")
    return log.select(needed)


def _utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC, like the log's."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _requests(
    log: pl.DataFrame,
    model: str | None,
    version: int | None,
    since: datetime | None,
    until: datetime | None,
) -> pl.DataFrame:
    """One row per request a caller sent: model, version, at, latency_ms, error, server_error."""
    conditions = [pl.col("role").is_in(REQUEST_ROLES)]
    if model is not None:
        conditions.append(pl.col("model") == model)
    if version is not None:
        conditions.append(pl.col("version") == version)
    if since is not None:
        conditions.append(pl.col("at") >= _utc(since))
    if until is not None:
        conditions.append(pl.col("at") < _utc(until))
    error = pl.col("role") == "error"
    return (
        log.filter(*conditions)
        .unique(subset=["request_id", "role", "at"], keep="any")
        .select(
            "model",
            "version",
            "at",
            "latency_ms",
            error.alias("error"),
            (error & (pl.col("status") >= 500)).alias("server_error"),
        )
    )


def _figures() -> list[pl.Expr]:
    """Counts and latency percentiles of a group of requests (a bucket or the window)."""
    answered = pl.col("latency_ms").filter(~pl.col("error"))
    return [
        pl.len().cast(pl.Int64).alias("requests"),
        pl.col("error").sum().cast(pl.Int64).alias("errors"),
        pl.col("server_error").sum().cast(pl.Int64).alias("server_errors"),
        *(answered.quantile(q, "linear").alias(name) for name, q in PERCENTILES.items()),
    ]


def _rates(seconds: pl.Expr) -> list[pl.Expr]:
    requests = pl.col("requests")
    return [
        pl.when(requests > 0).then(pl.col("errors") / requests).alias("error_rate"),
        pl.when(requests > 0).then(pl.col("server_errors") / requests).alias("server_error_rate"),
        (requests / seconds).alias("throughput_rps"),
    ]


# -- series ----------------------------------------------------------------------------------


def health_series(
    log: pl.DataFrame | pa.Table,
    *,
    model: str | None = None,
    every: str = "1m",
    since: datetime | None = None,
    until: datetime | None = None,
    by_version: bool = True,
) -> pl.DataFrame:
    """Health per (model, version) and time bucket of ``every`` (a Polars duration: ``"1m"``,
    ``"5m"``, ``"1h"``), from the requests in ``[since, until)``.

    Columns: ``model``, ``version`` (left out when ``by_version`` is False: all versions of a
    model together), ``at`` (the bucket's start, UTC, aligned on multiples of ``every``), then
    :data:`METRICS`. Buckets run from a group's first request to its last, or with ``until`` to
    the last bucket that ends by then; buckets without requests in between are there with zero
    requests (a silent model is what a throughput drop looks like). Without ``until`` the last
    bucket may still be filling, and its throughput reads low.

    >>> from mlship.monitor.predlog import read_log
    >>> health_series(read_log(directory), model="churn", every="5m")  # doctest: +SKIP
    """
    frame = _as_polars(log)
    requests = _requests(frame, model, None, since, until)
    keys = list(KEYS) if by_version else ["model"]
    return _series(requests, keys, every, until)


def _series(
    requests: pl.DataFrame, keys: list[str], every: str, until: datetime | None
) -> pl.DataFrame:
    buckets = (
        requests.sort([*keys, "at"])
        .group_by_dynamic("at", every=every, group_by=keys, closed="left", label="left")
        .agg(_figures())
    )
    if until is not None:
        buckets = _extend_to(buckets, keys, every, _utc(until))
    if buckets.height:
        buckets = buckets.upsample("at", every=every, group_by=keys, maintain_order=True)
    seconds = (pl.col("at").dt.offset_by(every) - pl.col("at")).dt.total_seconds(fractional=True)
    counts = [pl.col(c).fill_null(0) for c in ("requests", "errors", "server_errors")]
    return (
        buckets.with_columns(counts)
        .with_columns(_rates(seconds))
        .select(*keys, "at", *METRICS)
        .sort([*keys, "at"])
    )


def _extend_to(buckets: pl.DataFrame, keys: list[str], every: str, until: datetime) -> pl.DataFrame:
    """Buckets that end by ``until``, each group's run extended with an empty bucket up to the
    last of them (filled with zero requests by the upsampling)."""
    last = pl.select(pl.lit(until).dt.truncate(every).dt.offset_by(f"-{every}")).item()
    buckets = buckets.filter(pl.col("at") <= last)
    ends = (
        buckets.group_by(keys)
        .agg(pl.col("at").max())
        .filter(pl.col("at") < last)
        .with_columns(pl.lit(last).cast(buckets.schema["at"]).alias("at"))
    )
    return pl.concat([buckets, ends], how="diagonal").sort([*keys, "at"])


# -- the latest window -----------------------------------------------------------------------


def health_summary(
    log: pl.DataFrame | pa.Table,
    model: str,
    window: timedelta | str,
    *,
    version: int | None = None,
    now: datetime | None = None,
    every: str = "1m",
    alpha: float = 0.3,
    threshold: float = 3.0,
    warmup: int = 5,
) -> dict[str, float | None]:
    """Health of ``model`` over the window ``[now - window, now)``, for alert rules: all its
    versions together, or one ``version``. Every value is a float (counts too), or None when it
    cannot be computed, as alert rules read the monitor's metrics.

    ``window`` is a :class:`~datetime.timedelta` or a Polars duration (``"15m"``); ``now``
    defaults to the current time. Keys: ``health.requests``, ``health.errors``,
    ``health.server_errors``, ``health.error_rate``, ``health.server_error_rate``,
    ``health.throughput_rps``, ``health.latency_p50_ms``, ``health.latency_p95_ms``,
    ``health.latency_p99_ms`` (computed from the window's requests themselves, not from buckets;
    a rate or percentile without requests to compute it from is None), and ``health.anomalies``:
    how many (bucket, metric) points :func:`flag_anomalies` flags among the buckets of ``every``
    that lie wholly inside the window, learnt from the whole log before them (give the log enough
    history: ``warmup`` buckets at least). A window shorter than ``every`` has no bucket in it, so
    no anomaly.

    >>> health_summary(read_log(directory), "churn", "15m")["health.error_rate"]  # doctest: +SKIP
    0.004
    """
    end = _utc(now or datetime.now(UTC))
    if isinstance(window, timedelta):
        start = end - window
    else:
        start = pl.select(pl.lit(end).dt.offset_by(f"-{window}")).item()
    seconds = (end - start).total_seconds()
    if seconds <= 0:
        raise ValueError(f"the window must be a positive duration, got {window!r}")
    requests = _requests(_as_polars(log), model, version, None, end)
    figures = (
        requests.filter(pl.col("at") >= start)
        .select(_figures())
        .with_columns(_rates(pl.lit(seconds)))
    )
    summary = {f"health.{name}": _number(figures[name].item()) for name in METRICS}
    keys = list(KEYS) if version is not None else ["model"]
    flagged = flag_anomalies(
        _series(requests, keys, every, end), alpha=alpha, threshold=threshold, warmup=warmup
    ).filter(pl.col("at") >= start)
    summary["health.anomalies"] = float(
        flagged.select(pl.sum_horizontal(_flag_columns()).sum()).item() or 0
    )
    return summary


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


# -- anomalies -------------------------------------------------------------------------------


def anomalies(
    series: pl.Series | Sequence[float | None],
    *,
    alpha: float = 0.3,
    threshold: float = 3.0,
    warmup: int = 5,
    times: pl.Series | Sequence[datetime] | None = None,
    relative_floor: float = RELATIVE_FLOOR,
    min_std: float = 0.0,
) -> list[Anomaly]:
    """Points of ``series`` more than ``threshold`` moving standard deviations from the moving
    average, checked from the ``warmup``-th point on (the first ``warmup`` points only teach).

    The state is updated point by point, with ``d = x - mean``::

        mean_t = alpha * x + (1 - alpha) * mean_{t-1}      (mean_0 = x_0)
        var_t  = alpha * d**2 + (1 - alpha) * var_{t-1}    (var_0 = 0)

    and a point is judged by the state *before* it, ``z = (x - mean_{t-1}) / std_{t-1}``, so a
    spike does not raise the bar it is measured against. ``var`` is then the moving mean of the
    squared one-step forecast error: the spread of exactly the quantity ``z`` divides. The
    standard deviation is at least ``relative_floor`` x ``|mean|`` and ``min_std``, so a
    perfectly flat series does not flag tiny noise. Every point, anomalous or not, updates the
    state: a lasting shift is flagged, then becomes the new level. Missing values (None, NaN)
    are skipped: neither judged nor learnt from.

    A small ``warmup`` and a large ``alpha`` estimate the variance from few points, so ``z`` has
    heavy tails: with the defaults about 2 % of pure Gaussian noise is flagged; ``alpha=0.1``
    flags 0.7 % (see docs/decisions/008-operational-health.md).

    >>> [a.index for a in anomalies([10, 11, 10, 9, 10, 11, 10, 30, 10])]
    [7]
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if warmup < 1:
        raise ValueError(f"warmup must be at least 1, got {warmup}")
    values = series.to_list() if isinstance(series, pl.Series) else list(series)
    moments = None if times is None else list(times)
    if moments is not None and len(moments) != len(values):
        raise ValueError(f"{len(moments)} times were given for {len(values)} values")
    found: list[Anomaly] = []
    mean = var = 0.0
    seen = 0
    for index, value in enumerate(values):
        if value is None or math.isnan(value):
            continue
        x = float(value)
        if seen == 0:
            mean, seen = x, 1
            continue
        deviation = x - mean
        if seen >= warmup:
            std = max(math.sqrt(var), relative_floor * abs(mean), min_std)
            z = _z(deviation, std)
            if abs(z) > threshold:
                time = None if moments is None else moments[index]
                direction: Direction = "up" if z > 0 else "down"
                found.append(Anomaly(index, time, x, mean, z, direction))
        var = alpha * deviation**2 + (1 - alpha) * var
        mean = alpha * x + (1 - alpha) * mean
        seen += 1
    return found


def _z(deviation: float, std: float) -> float:
    if std > 0:
        return deviation / std
    return 0.0 if deviation == 0 else math.copysign(math.inf, deviation)


def _flag_columns() -> list[str]:
    return [f"{metric}_anomaly" for metric in WATCHED]


def flag_anomalies(
    series_frame: pl.DataFrame,
    *,
    alpha: float = 0.3,
    threshold: float = 3.0,
    warmup: int = 5,
    min_requests: int = MIN_REQUESTS,
) -> pl.DataFrame:
    """``series_frame`` (from :func:`health_series`) with a boolean column per watched metric:
    ``latency_p99_ms_anomaly``, ``error_rate_anomaly`` and ``throughput_rps_anomaly``, each
    series taken per (model, version) in time order (per model without a ``version`` column).

    The throughput is judged on the request counts (the same series, scaled, when buckets are of
    one length) with a floor of :data:`REQUESTS_FLOOR`; the error rate with a floor of
    :data:`ERROR_RATE_FLOOR`; buckets with fewer than ``min_requests`` requests are skipped for
    the latency and the error rate (see :data:`MIN_REQUESTS`).
    """
    keys = [key for key in KEYS if key in series_frame.columns]
    columns = _flag_columns()
    if series_frame.height == 0:
        return series_frame.with_columns(pl.lit(False).alias(c) for c in columns)
    frame = series_frame.sort([*keys, "at"])
    parts = frame.partition_by(keys, maintain_order=True) if keys else [frame]
    flagged = []
    for part in parts:
        enough = pl.col("requests") >= min_requests
        values = part.select(
            pl.when(enough).then(pl.col("latency_p99_ms")).alias("latency_p99_ms"),
            pl.when(enough).then(pl.col("error_rate")).alias("error_rate"),
            pl.col("requests").cast(pl.Float64).alias("throughput_rps"),
        )
        floors = {"latency_p99_ms": 0.0, "error_rate": ERROR_RATE_FLOOR,
                  "throughput_rps": REQUESTS_FLOOR}  # fmt: skip
        flags = []
        for metric, floor in floors.items():
            marks = [False] * part.height
            for found in anomalies(
                values[metric], alpha=alpha, threshold=threshold, warmup=warmup, min_std=floor
            ):
                if WATCHED[metric] == "both" or found.direction == WATCHED[metric]:
                    marks[found.index] = True
            flags.append(pl.Series(f"{metric}_anomaly", marks, pl.Boolean))
        flagged.append(part.with_columns(flags))
    return pl.concat(flagged)
