"""3D nuclei segmentation on simulated stacks: abbe's plane-wise segmentation joined across Z,
beside classical 3D Otsu + distance-transform watershed, in one run.

Data: :func:`abbe.simulate.cells.nuclei_stack` — 32×192×192 stacks of 30 ellipsoidal nuclei
(lateral semi-axes 10–16 px, axial 3–6 planes, touching at most), blur σ 1.2–1.5 px, Poisson
noise at 200 photons; seeds 100–104 (never used in training: nuclei-fluo saw only 2D images).
Methods: bundled ``nuclei-fluo`` via ``Segmenter.predict_stack`` (planes at one zoom measured
on the maximum projection, joined by optimal overlap ≥ 50 % of the smaller section, objects
in a single plane dropped); classical: 3D Gaussian smoothing, Otsu threshold, 3D distance
transform (Z scaled by the anisotropy), peaks as seeds, watershed.
Scores: AP at IoU 0.5 and 0.75 in 3D (optimal matching), counts; time per stack.

Run:    .venv/bin/python benchmarks/segmentation3d.py
Output: JSON on stdout and benchmarks/results/segmentation3d.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent


def classical(stack: np.ndarray, anisotropy: float = 3.0) -> np.ndarray:
    from skimage import filters, segmentation
    from skimage.feature import peak_local_max

    smooth = ndimage.gaussian_filter(stack.astype(float), (0.5, 1.5, 1.5))
    mask = smooth > filters.threshold_otsu(smooth)
    dist = ndimage.distance_transform_edt(mask, sampling=(anisotropy, 1, 1))
    peaks = peak_local_max(dist, min_distance=6, labels=mask.astype(int), exclude_border=False)
    markers = np.zeros(stack.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return segmentation.watershed(-dist, markers, mask=mask)


def main() -> None:
    from abbe.metrics.segmentation import score_labels
    from abbe.segment import Segmenter
    from abbe.simulate.cells import nuclei_stack

    model = Segmenter.load("nuclei-fluo")
    rows = {"abbe": [], "classical": []}
    times = {"abbe": [], "classical": []}
    for seed in range(100, 105):
        sim = nuclei_stack((32, 192, 192), count=30, seed=seed)
        for name, run in (("abbe", model.predict_stack), ("classical", classical)):
            t = time.perf_counter()
            labels = run(sim.image)
            times[name].append(time.perf_counter() - t)
            s = score_labels(labels, sim.labels)
            rows[name].append(
                {"ap50": s.ap50, "ap75": s.ap75, "n_true": s.n_true, "n_pred": s.n_pred}
            )
    result = {
        "benchmark": "segmentation3d",
        "stacks": 5,
        "shape": [32, 192, 192],
        "methods": {
            name: {
                "ap50_mean": float(np.mean([r["ap50"] for r in v])),
                "ap75_mean": float(np.mean([r["ap75"] for r in v])),
                "per_stack": v,
                "seconds_per_stack": round(float(np.mean(times[name])), 2),
            }
            for name, v in rows.items()
        },
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "segmentation3d.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
