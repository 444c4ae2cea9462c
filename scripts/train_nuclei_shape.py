"""Reproduce the bundled classifier ``nuclei-shape`` (round / elongated / fragmented nuclei).

Training data: 600 simulated nuclei per class (:func:`abbe.simulate.cells.nucleus_field`:
border neighbours, blur σ 0.7–2 px, texture, 30–1000 photons, Poisson + read noise), cropped
around each object's mask at 1.5× its extent and resized to 64² (as ``abbe classify --labels``
crops user objects); the masks feed the evidence-on-object terms. Temperature fitted on 100 per
class of other seeds. Validation (``metrics.json``): balanced accuracy, ECE and Grad-CAM mass
inside the mask on 200 held-out crops per class. No real image is used.

Run (about 4 minutes on 2 CPU cores):
    .venv/bin/python scripts/train_nuclei_shape.py [--minutes 3] [--out DIR]
Default output: src/abbe/models/weights/nuclei-shape/ (the shipped copy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "abbe" / "models" / "weights" / "nuclei-shape"


def validate(model) -> dict:
    from abbe.classify import saliency_inside, simulated_crops
    from abbe.metrics.classification import score_classes

    crops, names, masks = simulated_crops(model.config, 200, seed=31_337)
    scores = score_classes(model.predict_proba(crops), model._class_index(names))
    inside = saliency_inside(model.saliency(crops), masks)
    return {
        "balanced_accuracy": round(scores.balanced_accuracy, 4),
        "ece": round(scores.ece, 4),
        "saliency_inside_mean": round(float(inside.mean()), 4),
        "crops": len(crops),
    }


def main() -> None:
    from abbe.classify import Classifier, ClassifierConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    base = ClassifierConfig()
    cfg = base.updated(
        name="nuclei-shape",
        description="Nucleus shape classes (round, elongated, fragmented) of segmented "
        "nuclei: one crop per label; trained on simulated nuclei only.",
        training={"max_time_s": args.minutes * 60, "max_epochs": 100_000, "seed": 2},
    )
    model = Classifier(cfg).fit_simulated(n_per_class=600, n_validation=100, quiet=False)
    model.config = model.config.updated(
        **{
            "training_data": {
                **model.config.training_data,
                "summary": "600 simulated nuclei per class (abbe.simulate.cells.nucleus_field)",
                "script": "scripts/train_nuclei_shape.py",
                "minutes": args.minutes,
            }
        }
    )
    model.metrics["validation"] = validate(model)
    model.save(args.out, overwrite=True)
    print(args.out, model.metrics)


if __name__ == "__main__":
    main()
