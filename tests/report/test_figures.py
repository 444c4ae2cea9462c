"""Figures a user reads: scale bars legible over any image, colour bars with units, a legend that
hides no curve, and the key scores written on the figure (issue 28, finding 10)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

import abbe
from abbe import simulate
from abbe.errors import AbbeWarning
from abbe.report.figures import _scale_bar, _verify_figure


def _bars(ax) -> list[AnchoredSizeBar]:
    return [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]


def test_the_scale_bar_label_reads_over_a_saturated_image():
    # Arrange: a panel that displays all white, like the demo's noisy input at the truth's
    # contrast, where the white "5 µm" vanished.
    fig, ax = plt.subplots(figsize=(3, 3), dpi=100)
    ax.imshow(np.ones((256, 256)), cmap="gray", vmin=0, vmax=0.5)
    # Act: 256 pixels of 100 nm are 25.6 µm; a fifth of that rounds down to 5 µm.
    _scale_bar(ax, (256, 256), 100.0)
    fig.canvas.draw()
    (bar,) = _bars(ax)
    box = bar.get_window_extent(fig.canvas.get_renderer())
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    height = rgb.shape[0]  # display y runs up from the bottom, image rows down from the top
    inside = rgb[
        int(height - box.y1) + 1 : int(height - box.y0) - 1, int(box.x0) + 1 : int(box.x1) - 1
    ]
    plt.close(fig)
    # Assert: the label says 5 µm, on a dark box (most of it) with white bar and text on top.
    lum = inside.mean(axis=-1)
    assert bar.txt_label.get_text() == "5 µm"
    assert (lum < 0.35).mean() > 0.5
    assert (lum > 0.9).mean() > 0.05


@pytest.fixture(scope="module")
def report():
    """A 128² widefield scene at 100 nm pixels, a result with Laplace errors, its uncertainty."""
    sim = simulate.widefield("filaments", size=128, photons=50, seed=3)
    rng = np.random.default_rng(0)
    result = sim.clean + rng.laplace(0.0, 2.0, sim.clean.shape)
    sd = np.full(sim.clean.shape, np.sqrt(2.0) * 2.0)
    # The reference is labelled ADU so that the two colour bars' units differ and can be told
    # apart: the error map is in the reference's units, the uncertainty in the result's.
    return abbe.verify(
        result,
        reference=sim.input,
        truth=sim.clean,
        uncertainty=sd,
        pixel_size_nm=100.0,
        units="photons",
        reference_units="ADU",
        truth_units="photons",
    )


def test_the_verify_figure_has_scale_bars_colour_bars_with_units_and_the_scores(report):
    fig = _verify_figure(report, "r.tif against in.tif")
    fig.canvas.draw()
    titled = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    images = [ax for title, ax in titled.items() if not title.startswith("output: ")]
    # Five image panels, each with a scale bar: 128 × 100 nm = 12.8 µm, a fifth rounds to 2 µm.
    assert len(images) == 5
    for ax in images:
        (bar,) = _bars(ax)
        assert bar.txt_label.get_text() == "2 µm"
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "absolute error (ADU)" in labels and "standard deviation (photons)" in labels
    # The key scores, as the report holds them, written above the panels.
    heading = fig._suptitle.get_text()
    s = report.scores
    assert heading.startswith("r.tif against in.tif\n")
    assert f"PSNR {s.psnr:.2f} dB" in heading and f"SSIM {s.ssim:.3f}" in heading
    assert f"FRC {report.frc.resolution_nm:.0f} nm" in heading
    assert f"output {report.decorrelation.resolution_nm:.0f} nm" in heading
    assert f"RSP {report.error_map.rsp:.3f}" in heading
    plt.close(fig)


def test_the_resolution_legend_hides_no_curve_and_names_the_resolutions(report):
    fig = _verify_figure(report)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    plot = next(ax for ax in fig.axes if ax.get_title().startswith("output: "))
    legend = plot.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    # Outside the plotting area (so over no data), and inside the figure (so not clipped).
    assert not legend.get_window_extent(renderer).overlaps(plot.get_window_extent(renderer))
    assert fig.bbox.contains(*legend.get_window_extent(renderer).p0)
    assert f"FRC: {report.frc.resolution_nm:.0f} nm" in texts
    assert f"decorrelation: {report.decorrelation.resolution_nm:.0f} nm" in texts
    plt.close(fig)


def test_without_a_pixel_size_the_figure_measures_in_pixels_and_verify_warns():
    rng = np.random.default_rng(1)
    image = 10 + 100 * rng.random((64, 64))
    with pytest.warns(AbbeWarning, match="pixel size unknown"):
        report = abbe.verify(image, reference=image)
    fig = _verify_figure(report)
    fig.canvas.draw()
    bars = [b for ax in fig.axes for b in _bars(ax)]
    # 64 pixels: a fifth is 12.8, rounded down to 10 px; no made-up nanometres anywhere.
    assert bars and all(b.txt_label.get_text() == "10 px" for b in bars)
    assert any("cycles/pixel" in ax.get_xlabel() for ax in fig.axes)
    assert "nm" not in fig._suptitle.get_text()
    plt.close(fig)
