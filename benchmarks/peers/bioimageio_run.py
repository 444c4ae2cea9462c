"""Foreground probability from the bioimage.io "UNet 2D Nuclei Broad" ONNX model, for
``benchmarks/segmentation.py``. Runs in the onnxruntime venv (``setup_bioimageio.sh``); abbe is
not imported. Preprocessing as in the model's RDF: zero mean, unit variance over the image;
the ONNX graph takes fixed 512² windows and outputs logits, so larger images are covered by
overlapping windows (32 px halo, as the RDF states) and a sigmoid is applied.

    python bioimageio_run.py --model DIR --images in.npz --out probs.npz
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def windows(n: int, size: int = 512, halo: int = 32) -> list[tuple[int, int, int]]:
    """(window start, keep from, keep to) along one axis of length n (n ≥ size)."""
    if n <= size:
        return [(0, 0, n)]
    starts = [*range(0, n - size, size - 2 * halo), n - size]
    out = []
    for i, s in enumerate(starts):
        lo = 0 if i == 0 else s + halo
        hi = n if i == len(starts) - 1 else s + size - halo
        out.append((s, lo, hi))
    return out


def predict(session, image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32)
    x = (x - x.mean()) / (x.std() + 1e-6)
    h, w = x.shape
    ph, pw = max(0, 512 - h), max(0, 512 - w)
    x = np.pad(x, ((0, ph), (0, pw)), mode="reflect")
    out = np.zeros_like(x)
    name = session.get_inputs()[0].name
    for ys, ylo, yhi in windows(x.shape[0]):
        for xs, xlo, xhi in windows(x.shape[1]):
            tile = x[ys : ys + 512, xs : xs + 512][None, None]
            logits = session.run(None, {name: tile})[0][0, 0]
            out[ylo:yhi, xlo:xhi] = logits[ylo - ys : yhi - ys, xlo - xs : xhi - xs]
    return (1 / (1 + np.exp(-out)))[:h, :w]


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    session = ort.InferenceSession(f"{args.model}/weights.onnx", providers=["CPUExecutionProvider"])
    images = np.load(args.images)
    t0 = time.perf_counter()
    probs = {k: predict(session, images[k]) for k in images.files}
    np.savez(args.out, **probs, seconds=np.array(time.perf_counter() - t0))


if __name__ == "__main__":
    main()
