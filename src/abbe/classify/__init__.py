"""Classification of images and segmented objects (ResNet), calibrated, with saliency maps."""

from abbe.classify.model import (
    Classifier,
    ClassifierConfig,
    ObjectCrop,
    class_sizes,
    object_crops,
    paste_saliency,
    saliency_inside,
    simulated_crops,
    simulated_objects,
    whole_image_crop,
)
from abbe.classify.tables import read_table

__all__ = [
    "Classifier",
    "ClassifierConfig",
    "ObjectCrop",
    "class_sizes",
    "object_crops",
    "paste_saliency",
    "read_table",
    "saliency_inside",
    "simulated_crops",
    "simulated_objects",
    "whole_image_crop",
]
