"""Shortened echoes: never longer than the limit, recognisable, and marked when cut."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlship.text import shorten


@settings(derandomize=True, max_examples=200, deadline=None)
@given(text=st.text(max_size=120), limit=st.integers(min_value=1, max_value=80))
def test_a_shortened_text_fits_and_says_it_was_cut(text: str, limit: int) -> None:
    short = shorten(text, limit)
    assert len(short) <= limit
    if len(text) <= limit:
        assert short == text
    else:
        assert short == text[: limit - 1] + "…"
