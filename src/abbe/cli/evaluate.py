"""``abbe evaluate``: score a result against its ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from abbe.cli.common import out, print_json, reported_warnings, warn
from abbe.errors import InputError


def evaluate(
    prediction: Path = typer.Argument(
        ..., help="Result to score: an image, or localizations (.csv, .hdf5)."
    ),
    truth: Path = typer.Option(..., "--truth", "-t", help="Ground truth of the same field."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    normalize: bool = typer.Option(
        None,
        "--normalize/--no-normalize",
        help="Normalize first (the truth by percentiles, the result by an affine fit) or "
        "compare raw; by default only when units or scales differ, with a warning, as abbe "
        "verify does.",
        show_default=False,
    ),
    data_range: float = typer.Option(
        None, "--data-range", help="Range R for PSNR/SSIM (default: the truth's)."
    ),
    axes: str = typer.Option(None, "--axes", help="Axes of both images, e.g. YX or TYX."),
    radius_nm: float = typer.Option(
        250.0, "--radius", min=0.0, help="Localizations: matching tolerance, nm."
    ),
    matching: str = typer.Option("greedy", "--matching", help="Localizations: greedy|hungarian."),
    border_nm: float = typer.Option(
        0.0, "--border", min=0.0, help="Localizations: leave out this margin (needs --field)."
    ),
    field_nm: tuple[float, float] = typer.Option(
        (0.0, 0.0),
        "--field",
        metavar="HEIGHT WIDTH",
        show_default=False,
        help="Localizations: field size in nm, for --border.",
    ),
    pixel_size_nm: float = typer.Option(
        None, "--pixel-size", help="Localizations: pixel size for Picasso HDF5 without YAML."
    ),
    labels: bool = typer.Option(
        None,
        "--labels/--images",
        help="Score as instance labels (AP, F1, PQ) or as images; default: label images "
        "are recognized (whole numbers, background 0, flat regions).",
    ),
) -> None:
    """Score a result against its ground truth: an image by PSNR, SSIM, MS-SSIM and NRMSE;
    label images by AP at IoU 0.5…0.9, F1 and panoptic quality; localizations (.csv, .hdf5)
    by the SMLM challenge's Jaccard, RMSE and efficiency."""
    from abbe import io, metrics

    if prediction.suffix.lower() in (".csv", ".hdf5", ".h5"):
        _evaluate_localizations(
            prediction, truth, as_json, radius_nm, matching, border_nm, field_nm, pixel_size_nm
        )
        return

    pred, pred_meta = io.read(prediction, axes=axes)
    gt, gt_meta = io.read(truth, axes=axes)
    if pred.shape != gt.shape:
        raise InputError(
            f"shape {tuple(pred.shape)} differs from the truth {truth} with shape "
            f"{tuple(gt.shape)}; compare images of the same field and size",
            prediction,
        )
    if labels is None:
        kinds = (_looks_like_labels(pred, pred_meta), _looks_like_labels(gt, gt_meta))
        if kinds[0] != kinds[1]:
            which = truth if kinds[1] else prediction
            raise InputError(
                f"{which.name} looks like a label image and the other does not; compare labels "
                "with labels (or pass --labels / --images to say how to score)",
                prediction,
            )
        labels = kinds[0]
    if labels:
        _evaluate_labels(prediction, truth, pred, gt, as_json)
        return
    with reported_warnings(prediction) as caveats:
        scores = metrics.evaluate(
            pred,
            gt,
            normalize=normalize,
            units=pred_meta.extra.get("units"),
            truth_units=gt_meta.extra.get("units"),
            data_range=data_range,
        )
    if as_json:
        print_json(
            {
                "prediction": str(prediction),
                "truth": str(truth),
                **scores.as_dict(),
                "warnings": caveats,
            }
        )
        return
    from rich.table import Table

    table = Table(title=f"{prediction.name} against {truth.name}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("PSNR (dB)", f"{scores.psnr:.2f}")
    table.add_row("SSIM", f"{scores.ssim:.4f}")
    table.add_row("MS-SSIM", f"{scores.ms_ssim:.4f}")
    table.add_row("NRMSE", f"{scores.nrmse:.4f}")
    if scores.normalized:
        table.caption = "after percentile normalization of the truth and affine fit of the result"
    out.print(table)


def _evaluate_localizations(
    prediction: Path,
    truth: Path,
    as_json: bool,
    radius_nm: float,
    matching: str,
    border_nm: float,
    field_nm: tuple[float, float],
    pixel_size_nm: float | None,
) -> None:
    from abbe.io.tables import read_localizations
    from abbe.metrics.smlm import score

    test = read_localizations(prediction, pixel_size_nm=pixel_size_nm)
    gt = read_localizations(truth, pixel_size_nm=pixel_size_nm)
    if border_nm > 0 and min(field_nm) <= 0:
        raise InputError("--border needs the field size: --field HEIGHT_NM WIDTH_NM")
    result = score(
        test,
        gt,
        radius_nm=radius_nm,
        method=matching,
        field_nm=field_nm if border_nm > 0 else None,
        border_nm=border_nm,
    )
    caveats = _unmatched_caveats(result, len(test), len(gt), radius_nm)
    for message in caveats:
        warn(message, prediction)
    scores = {k: _finite_or_none(v) for k, v in result.as_dict().items()}
    if as_json:
        print_json(
            {"localizations": str(prediction), "truth": str(truth), **scores, "warnings": caveats}
        )
        return
    rmse = f"{result.rmse_nm:.1f} nm" if scores["rmse_nm"] is not None else "undefined"
    out.print(
        f"{prediction.name} against {truth.name} ({radius_nm:g} nm, {matching}): "
        f"Jaccard {result.jaccard:.1f} %, RMSE {rmse}, efficiency "
        f"{result.efficiency:.1f}; TP {result.tp}, FP {result.fp}, FN {result.fn}"
    )


def _unmatched_caveats(result, n_test: int, n_truth: int, radius_nm: float) -> list[str]:
    """Why RMSE and bias are undefined, when no localization matched: said, never a bare NaN."""
    if result.tp:
        return []
    if n_test == 0:
        return ["the localization table is empty: RMSE and bias are undefined (null)"]
    if n_truth == 0:
        return ["the truth holds no emitters: RMSE and bias are undefined (null)"]
    return [
        f"none of the {n_test} localizations lies within {radius_nm:g} nm of a true emitter "
        "in the same frame: RMSE and bias are undefined (null); check that both tables use "
        "the same pixel size, origin and frame numbering, or widen --radius"
    ]


def _finite_or_none(value):
    """JSON has no NaN: an undefined score is written as null (the warning says why)."""
    import math

    return None if isinstance(value, float) and not math.isfinite(value) else value


def _looks_like_labels(a, meta=None) -> bool:
    """A label image: one that says so (``units: labels`` in its metadata, as abbe segment and
    abbe simulate write), or whole numbers with a zero background that are either flat (≥ 90 %
    of pixels equal their right-hand neighbour) or piecewise constant (each value one connected
    region, of 4 pixels or more on average: many small nuclei leave few flat neighbours, but a
    noisy intensity image breaks each value into many specks)."""
    import numpy as np

    if meta is not None and meta.extra.get("units") == "labels":
        return True
    x = np.asarray(a)
    if not np.issubdtype(x.dtype, np.integer) or x.ndim < 2 or x.min() != 0:
        return False
    if (x == 0).mean() < 0.01:
        return False
    if (x[..., 1:] == x[..., :-1]).mean() >= 0.9:
        return True
    from skimage.measure import label

    regions = int(label(x, background=0, connectivity=1).max())
    values = int(np.unique(x).size) - 1
    return values > 0 and regions <= 1.5 * values and (x > 0).sum() >= 4 * regions


def _evaluate_labels(prediction: Path, truth: Path, pred, gt, as_json: bool) -> None:
    import numpy as np

    from abbe.metrics.segmentation import score_labels

    result = score_labels(np.asarray(pred), np.asarray(gt))
    if as_json:
        print_json({"labels": str(prediction), "truth": str(truth), **result.as_dict()})
        return
    out.print(
        f"{prediction.name} against {truth.name}: AP@0.5 {result.ap50:.3f}, AP@0.75 "
        f"{result.ap75:.3f}, F1 {result.f1:.3f}, PQ {result.pq:.3f} "
        f"({result.n_pred} objects, {result.n_true} true, {result.tp50} matched at IoU 0.5)"
    )
