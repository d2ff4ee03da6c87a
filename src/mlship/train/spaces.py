"""Hyper-parameter search spaces: the catalog's defaults, the spec's own, and how to walk them.

A space maps an estimator parameter to an :class:`~mlship.spec.training.IntRange`, a
:class:`~mlship.spec.training.FloatRange` or a :class:`~mlship.spec.training.Choice` (a plain list
in the spec is a choice). ``search: default`` takes the catalog's space for the estimator, less any
parameter the candidate fixes in ``params``.

The same space is walked two ways: :func:`sample_optuna` asks an Optuna trial for one point (random
and Bayesian search), and :func:`grid` / :func:`grid_axes` discretise it into a grid (each range
into ``points`` values, log-spaced on a log scale). A grid larger than the trial budget is visited
in an order shuffled by the tuning seed and cut at the budget.
"""

from __future__ import annotations

import difflib
import json
import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import clone

from mlship.json_values import plain
from mlship.spec.models import ModelSpec, Task
from mlship.spec.training import Choice, Dimension, FloatRange, IntRange, Space
from mlship.train.catalog import (
    CATALOG,
    EstimatorLookupError,
    parameter_problem,
    resolve_estimator_class,
)


def _int(low: int, high: int, *, log: bool = False) -> IntRange:
    return IntRange(bounds=(low, high), log=log)


def _float(low: float, high: float, *, log: bool = False) -> FloatRange:
    return FloatRange(bounds=(low, high), log=log)


def _choice(*values: Any) -> Choice:
    return Choice(choice=list(values))


_LEARNING_RATE = _float(0.01, 0.3, log=True)
_N_ESTIMATORS = _int(50, 500, log=True)


def _forest(classifier: bool) -> Space:
    return {
        "n_estimators": _N_ESTIMATORS,
        "max_depth": _choice(None, 4, 8, 16),
        "min_samples_leaf": _int(1, 20, log=True),
        "max_features": _float(0.2, 1.0),
        **({"criterion": _choice("gini", "entropy")} if classifier else {}),
    }


def _tree(classifier: bool) -> Space:
    return {
        "max_depth": _choice(None, 2, 4, 8, 16),
        "min_samples_leaf": _int(1, 50, log=True),
        "max_features": _choice(None, "sqrt"),
        **({"criterion": _choice("gini", "entropy")} if classifier else {}),
    }


def _gradient_boosting() -> Space:
    return {
        "n_estimators": _N_ESTIMATORS,
        "learning_rate": _LEARNING_RATE,
        "max_depth": _int(2, 6),
        "min_samples_leaf": _int(1, 50, log=True),
        "subsample": _float(0.5, 1.0),
    }


def _hist_gradient_boosting() -> Space:
    return {
        "learning_rate": _LEARNING_RATE,
        "max_iter": _N_ESTIMATORS,
        "max_leaf_nodes": _int(8, 128, log=True),
        "min_samples_leaf": _int(5, 100, log=True),
        "l2_regularization": _float(1e-4, 10.0, log=True),
    }


def _knn() -> Space:
    return {
        "n_neighbors": _int(1, 50, log=True),
        "weights": _choice("uniform", "distance"),
        "p": _choice(1, 2),
    }


def _lightgbm() -> Space:
    return {
        "n_estimators": _N_ESTIMATORS,
        "learning_rate": _LEARNING_RATE,
        "num_leaves": _int(8, 128, log=True),
        "min_child_samples": _int(5, 100, log=True),
        "colsample_bytree": _float(0.5, 1.0),
        "reg_lambda": _float(1e-4, 10.0, log=True),
    }


def _xgboost() -> Space:
    return {
        "n_estimators": _N_ESTIMATORS,
        "learning_rate": _LEARNING_RATE,
        "max_depth": _int(2, 10),
        "min_child_weight": _float(1.0, 20.0, log=True),
        "subsample": _float(0.5, 1.0),
        "colsample_bytree": _float(0.5, 1.0),
        "reg_lambda": _float(1e-3, 10.0, log=True),
    }


SPACES: dict[str, dict[str, Space]] = {
    "classification": {
        # l1_ratio 0 is the L2 penalty, 1 is L1 and anything between is the elastic net; only
        # the saga solver takes all three.
        "logistic_regression": {
            "C": _float(1e-3, 1e2, log=True),
            "l1_ratio": _choice(0.0, 0.25, 0.5, 0.75, 1.0),
            "solver": _choice("saga"),
        },
        "knn": _knn(),
        "svm": {"C": _float(1e-2, 1e3, log=True), "gamma": _float(1e-4, 10.0, log=True)},
        "decision_tree": _tree(classifier=True),
        "random_forest": _forest(classifier=True),
        "extra_trees": _forest(classifier=True),
        "gradient_boosting": _gradient_boosting(),
        "hist_gradient_boosting": _hist_gradient_boosting(),
        "lightgbm": _lightgbm(),
        "xgboost": _xgboost(),
        "dummy": {"strategy": _choice("prior", "most_frequent", "stratified", "uniform")},
    },
    "regression": {
        "linear_regression": {"fit_intercept": _choice(True, False)},
        "ridge": {"alpha": _float(1e-3, 1e3, log=True)},
        "lasso": {"alpha": _float(1e-4, 10.0, log=True)},
        "elastic_net": {"alpha": _float(1e-4, 10.0, log=True), "l1_ratio": _float(0.1, 1.0)},
        "knn": _knn(),
        "svm": {
            "C": _float(1e-2, 1e3, log=True),
            "gamma": _float(1e-4, 10.0, log=True),
            "epsilon": _float(1e-3, 1.0, log=True),
        },
        "decision_tree": _tree(classifier=False),
        "random_forest": _forest(classifier=False),
        "extra_trees": _forest(classifier=False),
        "gradient_boosting": _gradient_boosting(),
        "hist_gradient_boosting": _hist_gradient_boosting(),
        "lightgbm": _lightgbm(),
        "xgboost": _xgboost(),
        "dummy": {"strategy": _choice("mean", "median")},
    },
}
"""The default space of every catalog entry (``search: default``)."""


class SpaceError(ValueError):
    """A candidate's search space cannot be built; the message says what to write instead."""


def default_space(estimator_name: str, task: Task) -> Space:
    """The catalog's space for ``estimator_name`` (a catalog name or the dotted path of a
    catalog entry's class); :class:`SpaceError` for an estimator the catalog has no space for."""
    spaces = SPACES[task]
    name = estimator_name if estimator_name in spaces else _catalog_name(estimator_name, task)
    if name is None:
        raise SpaceError(
            f"there is no default search space for {estimator_name!r}; give the space, such as "
            "search: {param: {int: [low, high]}, other: {float: [low, high], log: true}, "
            "third: [choice, choice]}"
        )
    return dict(spaces[name])


def _catalog_name(estimator_name: str, task: Task) -> str | None:
    """The catalog entry whose class is (or specialises) the class a dotted path names."""
    try:
        cls = resolve_estimator_class(estimator_name, task)
    except EstimatorLookupError:
        return None
    for name in CATALOG[task]:
        entry = resolve_estimator_class(name, task)
        if entry is cls or issubclass(entry, cls):
            return name
    return None


def dimensions(space: Mapping[str, Any]) -> dict[str, Dimension]:
    """The space with every plain list turned into a :class:`Choice` (and, for spaces written
    in code, every mapping such as ``{"int": [1, 9]}`` into its range or choice)."""
    return {name: _as_dimension(dim) for name, dim in space.items()}


def _as_dimension(value: Any) -> Dimension:
    if isinstance(value, IntRange | FloatRange | Choice):
        return value
    if isinstance(value, list | tuple):
        return Choice(choice=list(value))
    if isinstance(value, Mapping):
        for key, model in (("int", IntRange), ("float", FloatRange), ("choice", Choice)):
            if key in value:
                return model.model_validate(value)
    raise TypeError(
        f"a search dimension is {{int: [low, high]}}, {{float: [low, high]}}, "
        f"{{choice: [...]}} or a list of choices, not {value!r}"
    )


def resolve_space(model: ModelSpec, task: Task) -> Space:
    """The space a candidate searches: the catalog's for ``search: default`` (less the
    parameters fixed in ``params``), the spec's own for a mapping, and none for no ``search``."""
    if model.search is None:
        return {}
    if model.search == "default":
        space = default_space(model.estimator, task)
        return {name: dim for name, dim in space.items() if name not in model.params}
    return dict(dimensions(model.search))


def space_problems(
    space: Mapping[str, Any],
    estimator_class: type[Any],
    params: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """(parameter, message) for every parameter of ``space`` the estimator cannot take; the
    message does not repeat the parameter's name.

    Every name must be one of the estimator's parameters (``get_params()`` of an instance, so
    nested ``step__param`` names of meta-estimators count), none may also be fixed in
    ``params``, and each end of a range and each choice must pass the estimator's own parameter
    validation where it declares one.
    """
    params = dict(params or {})
    try:
        accepted = set(estimator_class().get_params())
    except Exception as exc:  # any failure means the parameters cannot be listed
        return [
            (name, f"cannot list the parameters of {estimator_class.__name__}: {exc}")
            for name in space
        ]
    try:
        fixed = estimator_class(**params)
    except Exception:  # bad params are reported where they are written
        fixed = None
    problems: list[tuple[str, str]] = []
    for name, dim in dimensions(space).items():
        if name not in accepted:
            problems.append((name, _unknown_parameter(name, estimator_class, accepted)))
        elif name in params:
            problems.append((name, "fixed in params and also searched; keep it in one of them"))
        elif fixed is not None:
            reason = _bad_value(fixed, name, dim)
            if reason is not None:
                problems.append((name, reason))
    return problems


def check_space(
    space: Mapping[str, Any],
    estimator_class: type[Any],
    params: Mapping[str, Any] | None = None,
) -> list[str]:
    """The problems :func:`space_problems` finds, as messages that start with the parameter."""
    return [
        f"{name}: {message}" for name, message in space_problems(space, estimator_class, params)
    ]


def _unknown_parameter(name: str, estimator_class: type[Any], accepted: set[str]) -> str:
    message = f"not a parameter of {estimator_class.__name__}"
    close = difflib.get_close_matches(name, sorted(accepted), n=3)
    if close:
        return f"{message}; did you mean {' or '.join(repr(c) for c in close)}?"
    top_level = sorted(p for p in accepted if "__" not in p)
    return f"{message}; it takes: {', '.join(top_level)}"


def _bad_value(fixed: Any, name: str, dim: Dimension) -> str | None:
    """Why one end of a range or one choice is not a valid value of ``name``, or None."""
    values = list(dim.choice) if isinstance(dim, Choice) else list(dim.bounds)
    for value in values:
        try:
            estimator = clone(fixed, safe=False).set_params(**{name: value})
        except (ValueError, TypeError) as exc:
            return f"{value!r} is not a valid value: {exc}"
        reason = parameter_problem(estimator)
        if reason is not None:
            return f"{value!r} is not a valid value: {reason}"
    return None


# ---- discretising: grids -------------------------------------------------------------------


def _axis(dim: Dimension, points: int) -> list[Any]:
    """The values a grid tries for one dimension."""
    if isinstance(dim, Choice):
        return list(dim.choice)
    low, high = dim.bounds
    if isinstance(dim, IntRange):
        raw = np.geomspace(low, high, points) if dim.log else np.linspace(low, high, points)
        top = low + (high - low) // dim.step * dim.step
        values: list[Any] = []
        for value in raw:
            snapped = min(low + round((float(value) - low) / dim.step) * dim.step, top)
            if snapped not in values:
                values.append(int(snapped))
        return values
    raw = np.geomspace(low, high, points) if dim.log else np.linspace(low, high, points)
    inner = [float(f"{float(v):.6g}") for v in raw[1:-1]]
    floats: list[Any] = []
    for value in [float(low), *inner, float(high)]:
        if value not in floats:
            floats.append(value)
    return floats


def grid_size(space: Mapping[str, Any], points: int) -> int:
    """How many points the full grid of ``space`` has (1 for an empty space)."""
    return math.prod(len(_axis(dim, points)) for dim in dimensions(space).values())


def grid(
    space: Mapping[str, Any],
    points: int,
    *,
    limit: int | None = None,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """Every combination of the discretised dimensions (the Cartesian product).

    Ranges become ``points`` values (log-spaced when ``log``; whole numbers on the range's
    ``step`` and without repeats), choices stay as they are. With ``seed`` the combinations come
    in an order shuffled by that seed; ``limit`` keeps the first ``limit`` of them, so a grid
    larger than a trial budget is sampled evenly instead of cut along its last axis. The full
    grid is never built when only ``limit`` points are needed.
    """
    axes = [(name, _axis(dim, points)) for name, dim in dimensions(space).items()]
    sizes = [len(values) for _, values in axes]
    total = math.prod(sizes)
    count = total if limit is None else max(0, min(limit, total))
    order: Any = range(count)
    if seed is not None:
        order = random.Random(seed).sample(range(total), count)  # noqa: S311 - an order, not a secret
    combinations: list[dict[str, Any]] = []
    for number in order:
        point: dict[str, Any] = {}
        rest = number
        for (name, values), size in zip(reversed(axes), reversed(sizes), strict=True):
            rest, position = divmod(rest, size)
            point[name] = values[position]
        combinations.append({name: point[name] for name, _ in axes})
    return combinations


# ---- Optuna --------------------------------------------------------------------------------

_OPTUNA_TYPES = (type(None), bool, int, float, str)


def _needs_labels(values: list[Any]) -> bool:
    """Whether Optuna cannot store these choices as they are.

    Optuna's categorical parameters take None, booleans, numbers and strings, and find a value
    by equality, so choices that are lists or mappings, NaN, or equal across types (1 and True,
    0 and 0.0) are stored as text labels instead.
    """
    for value in values:
        if not isinstance(value, _OPTUNA_TYPES):
            return True
        if isinstance(value, float) and math.isnan(value):
            return True
    return any(
        a == b and type(a) is not type(b) for i, a in enumerate(values) for b in values[i + 1 :]
    )


def _label(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _choices(dim: Choice) -> tuple[list[Any], dict[Any, Any] | None]:
    """The values Optuna is given for a choice, and the way back when they are labels."""
    values = [plain(v) for v in dim.choice]
    if not _needs_labels(values):
        return values, None
    labels = {_label(v): v for v in values}
    return list(labels), labels


def grid_axes(space: Mapping[str, Any], points: int) -> dict[str, list[Any]]:
    """Each dimension's grid values, as Optuna's GridSampler takes them.

    The values are those of :func:`grid`, except choices that Optuna cannot store as they are,
    which appear as the text labels :func:`sample_optuna` suggests for them.
    """
    axes: dict[str, list[Any]] = {}
    for name, dim in dimensions(space).items():
        axes[name] = _choices(dim)[0] if isinstance(dim, Choice) else _axis(dim, points)
    return axes


def sample_optuna(
    trial: Any, space: Mapping[str, Any], method: str | None = None
) -> dict[str, Any]:
    """One point of ``space`` from an Optuna trial (``suggest_int`` / ``suggest_float`` /
    ``suggest_categorical``, with the range's ``log`` and ``step``).

    ``method`` (the tuning method) does not change the distributions: every sampler, Optuna's
    GridSampler included, is asked the same questions, so trials of one study stay comparable.
    GridSampler answers with the values of :func:`grid_axes`.
    """
    del method
    point: dict[str, Any] = {}
    for name, dim in dimensions(space).items():
        if isinstance(dim, IntRange):
            low, high = dim.bounds
            if dim.log:
                point[name] = trial.suggest_int(name, low, high, log=True)
            else:
                top = low + (high - low) // dim.step * dim.step  # the last value on the step
                point[name] = trial.suggest_int(name, low, top, step=dim.step)
        elif isinstance(dim, FloatRange):
            low_f, high_f = dim.bounds
            point[name] = trial.suggest_float(name, low_f, high_f, log=dim.log)
        else:
            values, labels = _choices(dim)
            picked = trial.suggest_categorical(name, values)
            point[name] = picked if labels is None else labels[picked]
    return point


def encode_optuna(space: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as Optuna stores them: the inverse of :func:`decode_optuna`, for enqueuing."""
    encoded = dict(params)
    for name, dim in dimensions(space).items():
        if isinstance(dim, Choice) and name in encoded:
            _, labels = _choices(dim)
            if labels is not None:
                encoded[name] = _label(plain(encoded[name]))
    return encoded


def decode_optuna(space: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as an Optuna trial stored them (``trial.params``), as the estimator takes them:
    choices kept as text labels become their values again."""
    decoded = dict(params)
    for name, dim in dimensions(space).items():
        if isinstance(dim, Choice) and name in decoded:
            _, labels = _choices(dim)
            if labels is not None and decoded[name] in labels:
                decoded[name] = labels[decoded[name]]
    return decoded


__all__ = [
    "SPACES",
    "SpaceError",
    "check_space",
    "decode_optuna",
    "default_space",
    "dimensions",
    "encode_optuna",
    "grid",
    "grid_axes",
    "grid_size",
    "resolve_space",
    "sample_optuna",
    "space_problems",
]
