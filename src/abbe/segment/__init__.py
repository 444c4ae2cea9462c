"""Instance segmentation of nuclei: a U-Net predicts foreground and a normalized distance map
(optionally a contact map), a seeded watershed turns them into labels, and touching pieces whose
union is convex are joined. Trained on simulations (:mod:`abbe.simulate.cells`) or on a user's
image/label pairs, and fine-tuned from a bundled model."""

from abbe.segment.config import SegmenterConfig
from abbe.segment.model import NucleusSize, Segmenter
from abbe.segment.postprocess import (
    BlobRadii,
    drop_faint,
    estimate_radius,
    measure_blobs,
    merge_convex,
    postprocess,
    touching_solidities,
)
from abbe.segment.targets import contact_map

__all__ = [
    "BlobRadii",
    "NucleusSize",
    "Segmenter",
    "SegmenterConfig",
    "contact_map",
    "drop_faint",
    "estimate_radius",
    "measure_blobs",
    "merge_convex",
    "postprocess",
    "touching_solidities",
]
