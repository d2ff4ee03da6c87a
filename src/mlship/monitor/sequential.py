"""An always-valid comparison of two variants' per-record outcomes, safe to look at any time.

A canary is watched while its traffic arrives: someone runs ``mlship monitor ab`` every few
minutes and stops when the answer looks clear. A fixed-horizon test (a z-test whose 5 % level holds
for one look at a sample size chosen in advance) checked at every look raises false alarms far more
often than 5 %: with enough looks, two identical variants are eventually "significantly"
different. The mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh
("Always Valid Inference", 2017) gives a p-value whose level holds at every look, whenever one
stops.

The difference of the two means, ``delta = mean(B) - mean(A)``, is estimated by ``d`` with variance
``v`` (the sum of each arm's variance of its mean). Against the null ``delta = 0``, with a normal
mixture ``N(0, tau^2)`` over the alternatives, the likelihood ratio of the normal approximation is::

    L = sqrt(v / (v + tau^2)) * exp(d^2 * tau^2 / (2 * v * (v + tau^2)))

and the always-valid p-value after looks ``1..n`` is ``min(1, min_k 1 / L_k)``: it never rises
and, under the null, stays below ``alpha`` at every look with probability at least ``1 - alpha``
(Ville's inequality on the martingale ``L``). Inverting the same test gives a confidence sequence:
at each look, ``d +- sqrt(v (v + tau^2) / tau^2 * (2 log(1/alpha) + log((v + tau^2) / v)))``;
intersecting them over the looks keeps the coverage and only narrows.

Here every labelled record is a look, in the order the records were answered: the guarantee holds
for any stopping rule, so the finest one costs nothing and makes the answer independent of when
the command was run. Each arm's variance of its mean is its outcomes' sample variance over ``n``
(for 0/1 outcomes such as a right or wrong answer, ``p (1 - p) / (n - 1)``). Before each arm has
:data:`MIN_PER_ARM` outcomes, or while the variance estimate is zero, a look carries no
evidence (``L = 1``): a plug-in variance from three records would make the ratio meaningless.

``tau`` is the size of difference worth finding, in the metric's units: a smaller one detects
small differences sooner and large ones later. It must be chosen before the data is seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

MIN_PER_ARM = 30
"""Outcomes each arm needs before a look counts: below that the plug-in variance is too noisy
for the normal approximation."""


@dataclass(frozen=True)
class SequentialTest:
    """The comparison of arm B against arm A after the last look."""

    looks: int
    """Looks that carried evidence (both arms had :data:`MIN_PER_ARM` outcomes)."""
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    """``mean_b - mean_a``."""
    p_value: float
    """Always-valid p-value: the smallest ``1 / L`` over every look (1 before any)."""
    interval: tuple[float, float] | None
    """Always-valid ``1 - alpha`` interval of the difference: the intersection over the looks."""
    fixed_p_value: float | None
    """The fixed-horizon two-sided z-test p-value at the last look, valid for one look only."""
    fixed_interval: tuple[float, float] | None
    """The fixed-horizon ``1 - alpha`` Wald interval at the last look."""
    alpha: float
    tau: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {
            "looks": self.looks,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "difference": self.difference,
            "p_value": self.p_value,
            "interval": None if self.interval is None else list(self.interval),
            "fixed_p_value": self.fixed_p_value,
            "fixed_interval": None if self.fixed_interval is None else list(self.fixed_interval),
            "alpha": self.alpha,
            "tau": self.tau,
            "significant": self.significant,
        }


def mixture_likelihood_ratio(difference: float, variance: float, tau: float) -> float:
    """``L`` of the normal mixture over alternatives with spread ``tau`` (1 when ``variance`` is
    not positive: no evidence either way)."""
    if not variance > 0:
        return 1.0
    tau2 = tau * tau
    return math.sqrt(variance / (variance + tau2)) * math.exp(
        difference * difference * tau2 / (2 * variance * (variance + tau2))
    )


def confidence_radius(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the always-valid interval at one look: the differences the test does not
    reject at level ``alpha``."""
    tau2 = tau * tau
    return math.sqrt(
        variance * (variance + tau2) / tau2
        * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance))
    )  # fmt: skip


def _ratios(difference: NDArray[Any], variance: NDArray[Any], tau: float) -> NDArray[Any]:
    """``log L`` at every look, vectorised; 0 where the variance is not positive."""
    tau2 = tau * tau
    safe = np.where(variance > 0, variance, 1.0)
    log_l = 0.5 * np.log(safe / (safe + tau2)) + difference**2 * tau2 / (2 * safe * (safe + tau2))
    return np.where(variance > 0, log_l, 0.0)


def _running(arm: NDArray[np.bool_], values: NDArray[Any]) -> tuple[NDArray[Any], ...]:
    """Count, mean and variance of the mean of one arm after each look."""
    taken = np.where(arm, values, 0.0)
    n = np.cumsum(arm).astype(float)
    total = np.cumsum(taken)
    squares = np.cumsum(taken * taken)
    safe = np.maximum(n, 1.0)
    mean = total / safe
    # Sample variance (n - 1); for 0/1 outcomes it is p (1 - p) n / (n - 1), within a hair of
    # the binomial one at the sizes where looks count.
    spread = np.maximum(squares - n * mean * mean, 0.0) / np.maximum(n - 1, 1.0)
    return n, mean, spread / safe


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def fixed_p_values(
    arms: NDArray[np.bool_], values: NDArray[Any], *, min_per_arm: int = MIN_PER_ARM
) -> NDArray[Any]:
    """The fixed-horizon two-sided z-test p-value at every look (1 where a look does not count):
    what checking a one-look test again and again would report."""
    n_a, mean_a, var_a = _running(~arms, values)
    n_b, mean_b, var_b = _running(arms, values)
    variance = var_a + var_b
    counts = (n_a >= min_per_arm) & (n_b >= min_per_arm) & (variance > 0)
    z = np.abs(mean_b - mean_a) / np.sqrt(np.where(counts, variance, 1.0))
    p = np.vectorize(math.erfc, otypes=[float])(z / math.sqrt(2)) if z.size else z
    return np.where(counts, p, 1.0)


def sequential_test(
    arms: NDArray[np.bool_] | list[bool],
    values: NDArray[Any] | list[float],
    *,
    tau: float,
    alpha: float = 0.05,
    min_per_arm: int = MIN_PER_ARM,
) -> SequentialTest:
    """Compare arm B (``arms`` True) against arm A (False) over outcomes ``values`` taken in the
    order they arrived, each a look; see the module's docstring."""
    if not tau > 0:
        raise ValueError(f"tau must be a positive difference, got {tau!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1, got {alpha!r}")
    arm = np.asarray(arms, dtype=bool)
    value = np.asarray(values, dtype=float)
    if arm.shape != value.shape or arm.ndim != 1:
        raise ValueError("arms and values must be two sequences of the same length")
    if not np.isfinite(value).all():
        raise ValueError("every outcome must be a finite number")
    n_a, mean_a, var_a = _running(~arm, value)
    n_b, mean_b, var_b = _running(arm, value)
    variance = var_a + var_b
    counts = (n_a >= min_per_arm) & (n_b >= min_per_arm) & (variance > 0)
    difference = mean_b - mean_a
    log_l = np.where(counts, _ratios(difference, variance, tau), 0.0)
    p_value = float(min(1.0, math.exp(-float(log_l.max())))) if log_l.size else 1.0
    looks = int(counts.sum())
    last_a, last_b = int(n_a[-1]) if arm.size else 0, int(n_b[-1]) if arm.size else 0
    interval = fixed_interval = fixed_p = None
    if looks:
        low, high = -math.inf, math.inf
        for d, v in zip(difference[counts], variance[counts], strict=True):
            radius = confidence_radius(float(v), tau, alpha)
            low, high = max(low, float(d) - radius), min(high, float(d) + radius)
        # Intersecting can leave nothing when the estimate wandered; the interval is then the
        # point where the last two bounds met (a rare event of probability below alpha).
        interval = (low, high) if low <= high else ((low + high) / 2, (low + high) / 2)
        d_last, v_last = float(difference[-1]), float(variance[-1])
        if counts[-1]:
            z = NormalDist().inv_cdf(1 - alpha / 2)
            fixed_interval = (d_last - z * math.sqrt(v_last), d_last + z * math.sqrt(v_last))
            fixed_p = 2 * _normal_sf(abs(d_last) / math.sqrt(v_last))
    return SequentialTest(
        looks=looks,
        n_a=last_a,
        n_b=last_b,
        mean_a=float(mean_a[-1]) if last_a else None,
        mean_b=float(mean_b[-1]) if last_b else None,
        difference=float(difference[-1]) if last_a and last_b else None,
        p_value=p_value,
        interval=interval,
        fixed_p_value=fixed_p,
        fixed_interval=fixed_interval,
        alpha=alpha,
        tau=tau,
    )
