"""Prediction at scale: tiling with exact context, streaming from and to disk."""

from abbe.predict.tiling import Tile, auto_tile, plan_tiles, predict_tiled, read_window

__all__ = ["Tile", "auto_tile", "plan_tiles", "predict_tiled", "read_window"]
