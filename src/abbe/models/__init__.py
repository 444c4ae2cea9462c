"""Trained models: the model folder format and the models bundled with abbe.

``abbe.models.load(name_or_folder)`` returns a ready model; ``abbe.models.available()`` lists
the bundled ones with their training data and validation scores.
"""

from abbe.models.registry import BUNDLED_DIR, available, load, resolve

__all__ = ["BUNDLED_DIR", "available", "load", "resolve"]
