"""The data report's charts: the shared inline-SVG charts of :mod:`mlship.html.svg`, which the
other reports draw with too."""

from __future__ import annotations

from mlship.html.svg import WIDTH, Bar, bar_chart, histogram, placeholder

__all__ = ["WIDTH", "Bar", "bar_chart", "histogram", "placeholder"]
