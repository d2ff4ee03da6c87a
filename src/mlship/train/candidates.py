"""A candidate as a recipe: all it takes to build its pipeline, small enough to ship to a worker.

Workers (local processes or Ray nodes) receive recipes, not fitted objects: a recipe plus a set of
tuned parameters builds the same pipeline everywhere. Resampling for imbalanced targets is a step
of that pipeline (imbalanced-learn's Pipeline applies samplers in ``fit`` only), so it happens
inside each training fold and never touches validation or test rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mlship.spec.data import Column, TargetTransform
from mlship.spec.models import ModelSpec, PipelineSpec, Task
from mlship.spec.training import Imbalance
from mlship.train.catalog import build_estimator, resolve_estimator_class
from mlship.train.weighting import with_target_transform

RESAMPLERS = {
    "oversample": "imblearn.over_sampling.RandomOverSampler",
    "undersample": "imblearn.under_sampling.RandomUnderSampler",
    "smote": "imblearn.over_sampling.SMOTE",
    "adasyn": "imblearn.over_sampling.ADASYN",
}


@dataclass(frozen=True)
class Recipe:
    """How to build one candidate's pipeline, given tuned parameters."""

    name: str
    estimator: str
    task: Task
    params: dict[str, Any]
    features: tuple[Column, ...]
    imbalance: Imbalance = field(default_factory=Imbalance)
    seed: int = 42
    positive: Any = None
    """The positive class that binary metrics are about (``None``: the last class)."""
    target_transform: TargetTransform | None = None
    """What a regressor learns of the target instead of the target itself (see
    :mod:`mlship.train.weighting`); predictions are in the target's units either way."""
    teacher: Recipe | None = None
    """For a distilled candidate, the teacher whose predictions it learns (its fixed params)."""

    @classmethod
    def from_spec(cls, spec: PipelineSpec, model: ModelSpec) -> Recipe:
        teacher = None
        if model.distilled_from is not None:
            declared = next(m for m in spec.models if m.label == model.distilled_from)
            teacher = cls.from_spec(spec, declared)
        return cls(
            name=model.label,
            estimator=model.estimator,
            task=spec.task,
            params=dict(model.params),
            features=tuple(spec.features),
            imbalance=spec.imbalance,
            seed=spec.split.seed,
            positive=spec.target.positive,
            target_transform=spec.target.target_transform,
            teacher=teacher,
        )

    def build(self, tuned: dict[str, Any] | None = None) -> Any:
        """A fresh, unfitted pipeline with the fixed params and ``tuned`` applied; for a
        distilled candidate, that pipeline as the student of its teacher's."""
        if self.teacher is not None:
            from mlship.train.distill import distilled

            student = replace(self, teacher=None).build(tuned)
            return distilled(self.task, self.teacher.build(), student)
        from mlship.features.preprocess import build_pipeline

        params = {**self.params, **(tuned or {})}
        accepted = resolve_estimator_class(self.estimator, self.task)().get_params()
        if "random_state" in accepted and params.get("random_state") is None:
            params["random_state"] = self.seed  # the same model on every machine and executor
        strategy = self.imbalance.strategy
        if strategy == "class_weight" and "class_weight" in accepted:
            params.setdefault("class_weight", "balanced")
        estimator = build_estimator(self.estimator, self.task, params)
        pipeline = with_target_transform(
            build_pipeline(list(self.features), estimator), self.target_transform
        )
        if strategy not in RESAMPLERS:
            return pipeline
        return _with_resampler(pipeline, self._resampler())

    def _resampler(self) -> Any:
        import importlib

        module, _, name = RESAMPLERS[self.imbalance.strategy].rpartition(".")
        sampler_class = getattr(importlib.import_module(module), name)
        ratio = self.imbalance.ratio
        return sampler_class(
            sampling_strategy="auto" if ratio is None else ratio, random_state=self.seed
        )


def _with_resampler(pipeline: Any, sampler: Any) -> Any:
    from imblearn.pipeline import Pipeline as ResamplingPipeline

    steps = list(pipeline.steps)
    return ResamplingPipeline([*steps[:-1], ("resample", sampler), steps[-1]])
