"""``abbe classify`` and ``abbe train classify``: classes of whole images or of labelled
objects, with calibrated probabilities and Grad-CAM saliency maps."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import typer

from abbe.cli.common import out, progress
from abbe.cli.options import compute, device_option, threads_option
from abbe.errors import InputError
from abbe.models.base import revalidated


def _plane(path: Path, what: str) -> np.ndarray:
    from abbe import io

    data, meta = io.read(path)
    a = np.asarray(data)
    if a.ndim == 3 and a.shape[-1] in (3, 4):  # RGB(A) PNG: first channel
        a = a[..., 0]
    if a.ndim != 2:
        raise InputError(f"{what} must be a 2D image; this one has axes {meta.axes}", path)
    return a


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
    class, its calibrated probability and every class's; optional saliency maps."""
    from abbe import io, models
    from abbe.classify import Classifier, object_crops, saliency_inside, whole_image_crop
    from abbe.cli.train import collect_images, match_pairs
    from abbe.io.tables import write_rows

    options = compute(device, threads)
    clf = models.load(model)
    if not isinstance(clf, Classifier):
        raise InputError("is not a classifier (train one with abbe train classify)", model)
    files = collect_images(inputs, "input")
    label_files: list[Path | None] = [None] * len(files)
    if labels:
        pairs = match_pairs(files, collect_images(labels, "labels"), inputs, labels)
        label_files = [b for _, b in pairs]
    io.check_writable(output, overwrite=overwrite)
    maps_out = {}
    if saliency is not None:
        maps_out = {f: saliency / f"{Path(f.name).stem}_saliency.tif" for f in files}
        for p in maps_out.values():
            io.check_writable(p, overwrite=overwrite)
    cfg = clf.config
    rows: list[dict[str, Any]] = []
    maps: dict[Path, np.ndarray] = {}
    jobs = list(zip(files, label_files, strict=True))
    for src, lab_path in progress(jobs, "classifying", quiet=quiet or len(jobs) < 2):
        image = _plane(src, "an input")
        if not np.all(np.isfinite(image)):
            raise InputError("contains NaN or infinite values", src)
        if lab_path is not None:
            lab = _plane(lab_path, "a label image")
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
            rows.append(row)
        if cams is not None:
            maps[src] = _paste(cams, crops, image.shape)
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


def _paste(cams: np.ndarray, crops: list, shape: tuple[int, int]) -> np.ndarray:
    """Put each crop's saliency back where the crop came from (maximum where crops overlap)."""
    from scipy import ndimage

    canvas = np.zeros(shape, np.float32)
    for cam, c in zip(cams, crops, strict=True):
        y0, y1, x0, x1 = c.box
        big = ndimage.zoom(cam, ((y1 - y0) / cam.shape[0], (x1 - x0) / cam.shape[1]), order=1)
        big = big[: y1 - y0, : x1 - x0]
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(shape[0], y1), min(shape[1], x1)
        part = big[ys - y0 : ye - y0, xs - x0 : xe - x0]
        canvas[ys:ye, xs:xe] = np.maximum(canvas[ys:ye, xs:xe], part)
    return canvas


def read_table(path: Path) -> tuple[list[np.ndarray], list[str], list[np.ndarray | None]]:
    """Training crops from a CSV: columns ``file,class`` (whole images) or
    ``file,labels,object,class`` (one object of a label image per row). Paths are relative to
    the table's folder."""
    from abbe.classify import object_crops

    if not path.exists():
        raise InputError("file not found", path)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise InputError("the table has no rows", path)
    cols = set(rows[0])
    if not {"file", "class"} <= cols:
        raise InputError("the table needs columns file and class (and labels, object)", path)
    by_object = {"labels", "object"} <= cols
    crops, names, masks = [], [], []
    cache: dict[tuple[str, str], dict[int, Any]] = {}
    for i, r in enumerate(rows, start=2):
        img_path = path.parent / r["file"]
        if not img_path.exists():
            raise InputError(f"row {i}: image not found: {r['file']}", path)
        if by_object and r.get("labels"):
            key = (r["file"], r["labels"])
            if key not in cache:
                lab_path = path.parent / r["labels"]
                if not lab_path.exists():
                    raise InputError(f"row {i}: label image not found: {r['labels']}", path)
                image, lab = _plane(img_path, "an image"), _plane(lab_path, "a label image")
                cache[key] = {c.label: c for c in object_crops(image, lab)}
            try:
                c = cache[key][int(r["object"])]
            except (KeyError, ValueError):
                raise InputError(
                    f"row {i}: no object {r['object']!r} in {r['labels']}", path
                ) from None
            crops.append(c.crop)
            masks.append(c.mask)
        else:
            crops.append(_plane(img_path, "an image").astype(np.float32))
            masks.append(None)
        names.append(r["class"].strip())
    return crops, names, masks


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
    from abbe.classify import Classifier, ClassifierConfig
    from abbe.nn.resnet import ResNetConfig
    from abbe.restore.model import prepare_output_folder

    prepare_output_folder(output, resume=resume, overwrite=overwrite)
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
