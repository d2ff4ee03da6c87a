"""The evaluation of a trained model: test metrics with bootstrap intervals, curves, a fit
diagnosis with a verdict in words, permutation importance, and the JSON and HTML report."""

from mlship.evaluation.render import render_evaluation_html
from mlship.evaluation.report import evaluate, write_evaluation_report

__all__ = ["evaluate", "render_evaluation_html", "write_evaluation_report"]
