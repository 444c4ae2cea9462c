"""Classification of images and segmented objects (ResNet), calibrated, with saliency maps."""

from abbe.classify.model import (
    Classifier,
    ClassifierConfig,
    ObjectCrop,
    object_crops,
    saliency_inside,
    simulated_crops,
    whole_image_crop,
)

__all__ = [
    "Classifier",
    "ClassifierConfig",
    "ObjectCrop",
    "object_crops",
    "saliency_inside",
    "simulated_crops",
    "whole_image_crop",
]
