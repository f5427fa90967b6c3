"""Kept for callers of the first segmenter: the splitting now lives in :mod:`vtts.workers.text.segment`."""

from __future__ import annotations

from .text.segment import ABBREVIATIONS, split_long, split_segments, split_sentences

__all__ = ["ABBREVIATIONS", "split_long", "split_segments", "split_sentences"]
