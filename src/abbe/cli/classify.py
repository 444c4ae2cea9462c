"""``abbe classify`` and ``abbe train classify``: classes of whole images or of labelled
objects, with calibrated probabilities and Grad-CAM saliency maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.common import check_model_folder, check_outputs, out, progress, reported_warnings
from abbe.cli.options import compute, device_option, threads_option
from abbe.errors import InputError
from abbe.models.base import revalidated


def classify(
    inputs: list[Path] = typer.Argument(..., help="Images (TIFF, PNG) or folders of them."),
    model: str = typer.Option(
        "nuclei-shape", "-m", "--model", help="Bundled classifier name or classifier folder."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="CSV table to write."),
    labels: list[Path] = typer.Option(
        None,
        "--labels",
        help="Label images, one per input (same order or same names in a folder): classify "
        "each object instead of the whole image.",
    ),
    saliency: Path = typer.Option(
        None, "--saliency", help="Folder for Grad-CAM maps (<input>_saliency.tif, input-sized)."
    ),
    device: str = device_option(),
    threads: int = threads_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
) -> None:
    """Classify images, or each labelled object in them: a CSV row per image/object with the
    class, its calibrated probability and every class's; optional saliency maps. Objects
    smaller than the model's training objects are flagged (in_training_range false, and a
    warning)."""
    from abbe import io, models
    from abbe.classify import (
        Classifier,
        object_crops,
        paste_saliency,
        saliency_inside,
        whole_image_crop,
    )
    from abbe.io import find_images, pair_files, read_plane
    from abbe.io.tables import write_rows

    files = find_images(inputs, "input")
    maps_out = {}
    if saliency is not None:
        maps_out = {f: saliency / f"{Path(f.name).stem}_saliency.tif" for f in files}
    check_outputs([output, *maps_out.values()], overwrite=overwrite)
    options = compute(device, threads)
    clf = models.load(model)
    if not isinstance(clf, Classifier):
        raise InputError("is not a classifier (train one with abbe train classify)", model)
    label_files: list[Path | None] = [None] * len(files)
    if labels:
        pairs = pair_files(
            files, find_images(labels, "labels"), input_args=inputs, target_args=labels
        )
        label_files = [b for _, b in pairs]
    cfg = clf.config
    rows: list[dict[str, Any]] = []
    maps: dict[Path, np.ndarray] = {}
    jobs = list(zip(files, label_files, strict=True))
    for src, lab_path in progress(jobs, "classifying", quiet=quiet or len(jobs) < 2):
        image = read_plane(src, what="an input")
        if not np.all(np.isfinite(image)):
            raise InputError("contains NaN or infinite values", src)
        if lab_path is not None:
            lab = read_plane(lab_path, what="a label image")
            if lab.shape != image.shape:
                raise InputError(
                    f"labels {lab.shape} do not match the image {image.shape}", lab_path
                )
            crops = object_crops(image, lab, size=cfg.crop_size, context=cfg.context)
            if not crops:
                raise InputError("holds no objects (all zero)", lab_path)
        else:
            crops = [whole_image_crop(image, cfg.crop_size)]
        prob = clf.predict_proba([c.crop for c in crops], **options)
        in_range = None
        if lab_path is not None and clf.smallest_size_px() is not None:
            with reported_warnings(src):  # the flag per object goes into the table
                in_range = clf.check_sizes([c.size_px for c in crops])
        cams = clf.saliency([c.crop for c in crops]) if saliency is not None else None
        inside = saliency_inside(cams, [c.mask for c in crops]) if cams is not None else None
        for k, (c, p) in enumerate(zip(crops, prob, strict=True)):
            row: dict[str, Any] = {
                "file": str(src),
                "object": c.label,
                "class": cfg.classes[int(p.argmax())],
                "probability": round(float(p.max()), 4),
            }
            row.update(
                {f"p_{name}": round(float(v), 4) for name, v in zip(cfg.classes, p, strict=True)}
            )
            if inside is not None and lab_path is not None:
                row["saliency_inside_object"] = round(float(inside[k]), 3)
            if in_range is not None:
                row["size_px"] = int(c.size_px)
                row["in_training_range"] = bool(in_range[k])
            rows.append(row)
        if cams is not None:
            maps[src] = paste_saliency(cams, crops, image.shape)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    write_rows(output, rows, columns=columns, overwrite=overwrite)
    for src, m in maps.items():
        io.write(maps_out[src], m, io.Meta("YX"), overwrite=overwrite)
    if not quiet:
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["class"]] = counts.get(r["class"], 0) + 1
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        extra = f"; saliency maps in {saliency}/" if saliency is not None else ""
        out.print(f"wrote {output}: {len(rows)} rows ({summary}){extra}")


def train_classify(
    output: Path = typer.Option(..., "-o", "--output", help="Model folder to create."),
    table: Path = typer.Option(
        None, "--table", help="CSV of file,class (or file,labels,object,class) rows."
    ),
    per_class: int = typer.Option(
        400, "--per-class", min=10, help="Simulated nuclei per class (without --table)."
    ),
    crop_size: int = typer.Option(64, "--crop-size", min=16, max=512, help="Crop edge, px."),
    max_time: float = typer.Option(180.0, "--max-time", min=1.0, help="Training budget, s."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model in the folder."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Train a ResNet classifier: on your table of images/objects and classes, or on simulated
    nuclei shapes (round, elongated, fragmented); temperature-calibrated on held-out data."""
    from abbe.classify import Classifier, ClassifierConfig, read_table
    from abbe.nn.resnet import ResNetConfig

    check_model_folder(output, resume=resume, overwrite=overwrite)
    base = ClassifierConfig()
    training = revalidated(
        base.training, {"max_time_s": max_time, "max_epochs": 100_000, "seed": seed}
    )
    if table is not None:
        crops, names, masks = read_table(table)
        classes = tuple(dict.fromkeys(names))
        if len(classes) < 2:
            raise InputError("the table names fewer than two classes", table)
        config = ClassifierConfig(
            name=output.name,
            classes=classes,
            crop_size=crop_size,
            network=ResNetConfig(n_classes=len(classes)),
            training=training,
            training_data={"table": str(table), "n": len(crops)},
        )
        model = Classifier(config).fit(
            crops, names, masks=masks, work_dir=output, resume=resume, quiet=quiet
        )
    else:
        config = base.updated(name=output.name, crop_size=crop_size, training=training)
        model = Classifier(config).fit_simulated(
            n_per_class=per_class, work_dir=output, resume=resume, quiet=quiet
        )
    model.save(output, overwrite=True)
    if not quiet:
        from abbe.cli.train import training_summary

        cal = model.metrics["calibration"]
        out.print(
            training_summary(
                model.metrics,
                f"temperature {cal['temperature']:.3g} "
                f"(ECE {cal['ece_before']:.3f} → {cal['ece_after']:.3f}); "
                f"use: abbe classify IMAGES -m {output} -o table.csv",
            )
        )
