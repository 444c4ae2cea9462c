"""A user's YAML laid over a config's defaults."""

from __future__ import annotations

from abbe.models.folder import merge_config


def test_sections_merge_key_by_key_and_other_values_are_replaced():
    base = {"axes": "YX", "training": {"seed": 0, "batch_size": 16}, "tags": ["a"]}
    user = {"training": {"seed": 3}, "axes": "ZYX", "tags": ["b"]}
    merged = merge_config(base, user)
    assert merged == {"axes": "ZYX", "training": {"seed": 3, "batch_size": 16}, "tags": ["b"]}
    assert base["training"] == {"seed": 0, "batch_size": 16}  # the defaults are untouched
