"""Classification benchmark: nucleus shape classes (round, elongated, fragmented) on held-out
simulations, abbe's ResNet beside a classical shape-feature classifier, in one run.

Data: :func:`abbe.simulate.cells.nucleus_field` — one nucleus per field with parts of
neighbours at the border, 30–1000 photons, blur, texture; cropped around the object's mask at
1.5× its extent and resized to 64² (as ``abbe classify --labels`` does). Training: ``--per-class``
fields per class (seed 0), temperature fitted on 100 per class (other seeds); test: 300 per
class (seed 909).
Methods:
- abbe ResNet (3 stages, 16–64 channels) trained ``--minutes`` on this CPU with the
  evidence-on-object penalty (the share of the true class's activation map outside the
  object's mask, from the simulations' masks), then temperature scaling;
- the same without that penalty (plain cross-entropy), to show what the saliency maps reveal;
- classical: Otsu threshold of the crop, then area, eccentricity, solidity, number of
  components and the fraction of the crop above threshold; standardized; nearest class centroid
  (fitted on the same training crops).
Scores: accuracy, balanced accuracy, expected calibration error (15 bins) before and after
temperature scaling, confusion matrix; Grad-CAM saliency mass inside the object's mask (mean
and fraction of crops ≥ 80 %), per class.

Run:    .venv/bin/python benchmarks/classification.py [--minutes 3]
Output: JSON on stdout, benchmarks/results/classification.json and classification.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def shape_features(crop: np.ndarray) -> np.ndarray:
    from skimage import filters, measure

    c = crop.astype(np.float64)
    mask = c > filters.threshold_otsu(c)
    labels = measure.label(mask)
    props = measure.regionprops(labels)
    if not props:
        return np.zeros(5)
    big = max(props, key=lambda p: p.area)
    return np.array(
        [big.area, big.eccentricity, big.solidity, len(props), mask.mean()], dtype=np.float64
    )


def nearest_centroid(train_x, train_y, test_x, n_classes):
    mu, sd = train_x.mean(axis=0), train_x.std(axis=0) + 1e-9
    z = (train_x - mu) / sd
    centroids = np.stack([z[train_y == k].mean(axis=0) for k in range(n_classes)])
    d = (((test_x - mu) / sd)[:, None, :] - centroids[None]) ** 2
    return d.sum(axis=2).argmin(axis=1)


def figure(clf, plain, crops, names, masks, prob, y, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = clf.config.classes
    fig, axes = plt.subplots(len(classes), 7, figsize=(15, 2.3 * len(classes)))
    for r, k in enumerate(classes):
        idx = [i for i, n in enumerate(names) if n == k][:3]
        maps = list(clf.saliency([crops[i] for i in idx]))
        maps += list(plain.saliency([crops[i] for i in idx]))
        for c, (i, m) in enumerate(zip(idx + idx, maps, strict=True)):
            ax = axes[r, c]
            ax.imshow(crops[i], cmap="gray")
            ax.imshow(m, cmap="inferno", alpha=0.45)
            ax.contour(masks[i], levels=[0.5], colors="cyan", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            which = "with" if c < 3 else "without"
            ax.set_title(f"{which} penalty", fontsize=8)
            if c == 0:
                ax.set_ylabel(k)
        axes[r, 6].axis("off")
    ax = fig.add_axes((0.84, 0.15, 0.14, 0.7))
    conf = prob.max(axis=1)
    correct = prob.argmax(axis=1) == y
    edges = np.linspace(0, 1, 11)
    centers, accs = [], []
    for lo, hi in itertools.pairwise(edges):
        sel = (conf >= lo) & (conf < hi)
        if sel.sum() >= 5:
            centers.append(conf[sel].mean())
            accs.append(correct[sel].mean())
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.plot(centers, accs, "o-")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability (calibrated)", fontsize=8)
    fig.suptitle("Grad-CAM saliency (overlay) and object mask (cyan), held-out simulations")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    from abbe.classify import Classifier, ClassifierConfig, saliency_inside, simulated_crops
    from abbe.metrics.classification import score_classes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--per-class", type=int, default=600)
    ap.add_argument("--test-per-class", type=int, default=300)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()

    base = ClassifierConfig()
    cfg = base.updated(training={"max_time_s": args.minutes * 60, "max_epochs": 100_000})
    plain = Classifier(cfg.updated(evidence_on_object=0.0))
    plain.fit_simulated(n_per_class=args.per_class, n_validation=100)
    clf = Classifier(cfg)
    t0 = time.perf_counter()
    clf.fit_simulated(n_per_class=args.per_class, n_validation=100)
    wall = time.perf_counter() - t0
    crops, names, masks = simulated_crops(clf.config, args.test_per_class, seed=909)
    y = clf._class_index(names)
    logits = clf.logits(crops)
    raw = np.exp(logits - logits.max(axis=1, keepdims=True))
    raw /= raw.sum(axis=1, keepdims=True)
    prob = clf.predict_proba(crops)
    calibrated = score_classes(prob, y)
    uncalibrated = score_classes(raw, y)
    maps = np.concatenate([clf.saliency(crops[i : i + 200]) for i in range(0, len(crops), 200)])
    inside = saliency_inside(maps, masks)
    per_class = {
        k: {
            "saliency_inside_mean": float(inside[y == i].mean()),
            "fraction_at_least_80pct": float((inside[y == i] >= 0.8).mean()),
        }
        for i, k in enumerate(clf.config.classes)
    }
    plain_prob = plain.predict_proba(crops)
    plain_maps = np.concatenate(
        [plain.saliency(crops[i : i + 200]) for i in range(0, len(crops), 200)]
    )
    plain_inside = saliency_inside(plain_maps, masks)
    without_penalty = {
        "calibrated": score_classes(plain_prob, y).as_dict(),
        "saliency_inside_mean": float(plain_inside.mean()),
        "saliency_per_class": {
            k: float(plain_inside[y == i].mean()) for i, k in enumerate(clf.config.classes)
        },
    }
    # Classical baseline on the same crops.
    train_crops, train_names, _ = simulated_crops(clf.config, args.per_class, seed=0)
    fx = np.stack([shape_features(c) for c in train_crops])
    tx = np.stack([shape_features(c) for c in crops])
    pred = nearest_centroid(fx, clf._class_index(train_names), tx, len(clf.config.classes))
    onehot = np.eye(len(clf.config.classes))[pred]
    classical = score_classes(onehot, y)
    result = {
        "benchmark": "classification",
        "classes": list(clf.config.classes),
        "training": {**clf.metrics, "wall_seconds": round(wall, 1)},
        "test_per_class": args.test_per_class,
        "abbe": {
            "calibrated": calibrated.as_dict(),
            "uncalibrated_ece": uncalibrated.ece,
            "temperature": clf.config.temperature,
            "saliency_inside_mean": float(inside.mean()),
            "saliency_fraction_at_least_80pct": float((inside >= 0.8).mean()),
            "saliency_per_class": per_class,
        },
        "abbe_without_evidence_penalty": without_penalty,
        "classical_shape_features": {
            "accuracy": classical.accuracy,
            "balanced_accuracy": classical.balanced_accuracy,
            "confusion": classical.confusion,
        },
        "targets": {
            "balanced_accuracy_ge_0.95": calibrated.balanced_accuracy >= 0.95,
            "ece_le_0.05": calibrated.ece <= 0.05,
            "saliency_inside_ge_0.8": float(inside.mean()) >= 0.8,
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "classification.json").write_text(json.dumps(result, indent=1))
    figure(clf, plain, crops, names, masks, prob, y, args.out / "classification.png")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
