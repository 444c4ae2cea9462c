"""Instance segmentation of nuclei: a U-Net predicts foreground and a normalized distance map, a
seeded watershed turns them into labels. Trained on simulations (:mod:`abbe.simulate.cells`) or on
a user's image/label pairs, and fine-tuned from a bundled model."""

from abbe.segment.model import (
    Segmenter,
    SegmenterConfig,
    drop_faint,
    estimate_radius,
    postprocess,
)

__all__ = ["Segmenter", "SegmenterConfig", "drop_faint", "estimate_radius", "postprocess"]
