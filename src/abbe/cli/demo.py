"""``abbe demo``: the main job end to end on bundled data with a bundled model."""

from __future__ import annotations

from pathlib import Path

import typer

from abbe.cli.common import out, write_json

MODEL = "denoise-widefield"


def demo(
    output: Path = typer.Option(Path("demo_output"), "-o", "--output", help="Folder to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    sample_name: str = typer.Option("widefield-filaments", "--sample", help="Bundled sample."),
) -> None:
    """Restore a bundled noisy sample with the bundled model; write the result, a figure and
    scores against the truth, beside a classical baseline (non-local means)."""
    from rich.table import Table

    from abbe import io, metrics, models, report
    from abbe.data.samples import sample
    from abbe.restore import classical

    names = ["input.tif", "restored.tif", "nlm.tif", "truth.tif", "metrics.json", "comparison.png"]
    outputs = io.OutputSet([output / n for n in names], overwrite=overwrite)
    s = sample(sample_name)
    model = models.load(MODEL)
    restored = model.predict(s.noisy, s.meta.axes)
    cam = s.params["camera"]
    gat = {
        "gain": cam["gain_adu_per_e"] * cam["qe"],
        "offset": cam["offset_adu"]["mean"],
        "read_noise": cam["gain_adu_per_e"] * cam["read_noise_e"]["mean"],
    }
    nlm = classical.nlm(s.noisy, **gat)
    scores = {
        "input": metrics.evaluate(s.noisy, s.clean).as_dict(),
        "non-local means": metrics.evaluate(nlm, s.clean).as_dict(),
        f"abbe {MODEL}": metrics.evaluate(restored, s.clean).as_dict(),
    }
    photons = s.params["photons"]
    with outputs as tmp:
        io.write(tmp["input.tif"], s.noisy, s.meta)
        io.write(tmp["restored.tif"], restored, s.meta)
        io.write(tmp["nlm.tif"], nlm, s.meta)
        io.write(tmp["truth.tif"], s.clean, s.meta)
        write_json(
            tmp["metrics.json"],
            {"sample": s.name, "model": MODEL, "scores": scores, "simulation": s.params},
            overwrite=False,
        )
        panels = {
            f"input ({photons:g} photons peak)": s.noisy,
            "non-local means": nlm,
            f"abbe {MODEL}": restored,
            "truth": s.clean,
        }
        captions = {
            title: _caption(score)
            for title, score in zip(list(panels)[:3], scores.values(), strict=True)
        }
        report.side_by_side(
            panels,
            tmp["comparison.png"],
            pixel_size_nm=s.meta.pixel_size_nm,
            reference="truth",
            captions=captions,
        )
    table = Table(title=f"abbe demo: {s.name} (sCMOS, {photons:g} photons peak) against the truth")
    for col in ("image", "PSNR dB", "SSIM", "MS-SSIM", "NRMSE"):
        table.add_column(col, justify="left" if col == "image" else "right")
    for name, sc in scores.items():
        table.add_row(
            name,
            f"{sc['psnr']:.2f}",
            f"{sc['ssim']:.3f}",
            f"{sc['ms_ssim']:.3f}",
            f"{sc['nrmse']:.3f}",
        )
    out.print(table)
    out.print(f"wrote {output}/: {', '.join(names)}")


def _caption(s: dict) -> str:
    return f"PSNR {s['psnr']:.1f} dB · SSIM {s['ssim']:.3f}"
