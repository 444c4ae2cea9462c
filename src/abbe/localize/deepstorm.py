"""Deep-STORM: a network that turns a dense SMLM frame into an upsampled emitter-density image.

Nehme, Weiss, Michaeli & Shechtman, "Deep-STORM: super-resolution single-molecule microscopy
by deep learning", Optica 5:458 (2018). The network sees a camera frame and outputs, on a grid
``upsampling`` times finer, an image whose mass marks emitters: the target is a sum of spikes
(one per emitter, of height ``SPIKE``) and the loss compares prediction and target after both
are blurred by a small Gaussian (so a spike one grid pixel off costs little), plus an L1 term
that keeps the output sparse. Here the upsampling is done by the network itself (a U-Net whose
last layer predicts ``upsampling²`` channels, rearranged by pixel shuffle; Shi et al., CVPR 2016),
which costs far less than convolving an interpolated input at the fine grid.

Localizations are read off the density image: local maxima whose surrounding mass exceeds a
threshold (in emitters, calibrated on simulations after training), positioned at the centroid
of that mass. The density image itself is the super-resolved render.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field

from abbe.localize.learned import Localizer, SimulationMatch
from abbe.models.base import UNET_2015, Citation, ExportInfo, revalidated
from abbe.nn import UNetConfig

NEHME_2018 = Citation(
    "Nehme, Weiss, Michaeli & Shechtman. Deep-STORM: super-resolution single-molecule "
    "microscopy by deep learning. Optica 5:458 (2018).",
    doi="10.1364/OPTICA.5.000458",
)
SPIKE = 100.0  # target height per emitter, as in Deep-STORM: keeps the loss away from 0


class DeepStormConfig(SimulationMatch):
    """A Deep-STORM model: upsampling, blur of the loss, network, detection threshold."""

    version: Literal[1] = 1
    method: Literal["deepstorm"] = "deepstorm"

    upsampling: int = Field(4, ge=1, le=8, description="Output grid per camera pixel.")
    blur_sigma: float = Field(
        1.0, gt=0, le=4, description="σ of the loss's Gaussian blur, in output pixels."
    )
    l1_weight: float = Field(1.0, ge=0, description="Weight of the sparsity (L1) term.")
    network: UNetConfig = UNetConfig(
        in_channels=1, out_channels=1, width=24, depth=3, residual=False
    )
    threshold: float = Field(
        0.5, gt=0, lt=9, description="Detection threshold: emitters in a peak's neighbourhood."
    )
    name: str = "deepstorm"


def density_targets(
    truth: pd.DataFrame, n_frames: int, shape: tuple[int, int], cfg: DeepStormConfig
) -> np.ndarray:
    """Target density (T, 1, Y·u, X·u): ``SPIKE`` at each emitter's fine-grid pixel."""
    u = cfg.upsampling
    h, w = shape[0] * u, shape[1] * u
    out = np.zeros((n_frames, 1, h, w), dtype=np.float32)
    if len(truth) == 0:
        return out
    fine = cfg.pixel_size_nm / u
    ix = np.floor(truth["x_nm"].to_numpy() / fine).astype(int)
    iy = np.floor(truth["y_nm"].to_numpy() / fine).astype(int)
    t = truth["frame"].to_numpy().astype(int) - 1
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h) & (t >= 0) & (t < n_frames)
    np.add.at(out, (t[ok], 0, iy[ok], ix[ok]), SPIKE)
    return out


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(np.ceil(3 * sigma)))
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def blurred_mse_l1(
    out: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor, l1_weight: float
) -> torch.Tensor:
    """Deep-STORM's loss: MSE of the Gaussian-blurred prediction against the blurred target,
    plus ``l1_weight`` × mean |prediction|."""
    k = kernel.to(out)
    pad = k.shape[-1] // 2
    diff = F.conv2d(out - y, k, padding=pad)  # blur is linear: blur(out) − blur(y)
    return (diff**2).mean() + l1_weight * out.abs().mean()


class DeepStorm(Localizer):
    """Deep-STORM trained on simulations: ``fit``, ``predict`` (localizations) and
    ``predict_density`` (the super-resolved density image).

    Examples
    --------
    >>> cfg = DeepStormConfig(psf_sigma_nm=130, density=(2, 8))  # doctest: +SKIP
    >>> model = DeepStorm(cfg).fit(work_dir="runs/ds")  # doctest: +SKIP
    >>> locs = model.predict(stack, camera=camera)  # doctest: +SKIP
    """

    method = "deepstorm"
    config_class = DeepStormConfig
    thresholds = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)

    @property
    def scale(self) -> int:  # type: ignore[override]
        return self.config.upsampling

    def export_info(self) -> ExportInfo:
        """Frames in photo-electrons minus their median → emitter density on the finer grid
        (the network's output over ``SPIKE``, clipped at 0, as :meth:`predict_density`)."""
        cfg = self.config
        u = cfg.upsampling
        return ExportInfo(
            kind="image",
            spatial_axes="YX",
            input_description=(
                "one SMLM camera frame in photo-electrons with the frame's median subtracted "
                "(abbe converts camera counts and subtracts it); divided by "
                f"{cfg.signal_scale:.4g}, the peak of a mid-range training emitter"
            ),
            output_description=(
                f"emitter density on a grid {u}× finer than the camera's: emitters per fine "
                "pixel (the mass around a peak counts the emitters there)"
            ),
            output_channels=("density",),
            input_gain=1.0 / cfg.signal_scale,
            output_gain=1.0 / SPIKE,
            clip_min=0.0,
            scale=u,
            citations=(NEHME_2018, UNET_2015),
            tags=("smlm", "localization-microscopy", "super-resolution", "density"),
            limits=(
                f"Trained on simulated frames: {cfg.pixel_size_nm:g} nm pixels, PSF σ "
                f"{cfg.psf_sigma_nm:g} nm, {cfg.photons[0]:g}–{cfg.photons[1]:g} photons per "
                f"emitter, background {cfg.background[0]:g}–{cfg.background[1]:g}, "
                f"{cfg.density[0]:g}–{cfg.density[1]:g} emitters per µm² per frame.",
                "The bioimage.io spec cannot subtract a median: give frames with it subtracted.",
                "abbe localize turns the density into a localization table; the package gives "
                "the density image only.",
            ),
        )

    def _new_network(self) -> torch.nn.Module:
        from abbe.nn import UNet

        u = self.config.upsampling
        net_cfg = revalidated(self.config.network, {"out_channels": u * u})
        return torch.nn.Sequential(UNet(net_cfg), torch.nn.PixelShuffle(u))

    @staticmethod
    def make_targets(truth: pd.DataFrame, n_frames: int, shape: tuple[int, int], cfg: Any):
        return density_targets(truth, n_frames, shape, cfg)

    def loss(self, out: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        kernel = getattr(self, "_kernel", None)
        if kernel is None:
            kernel = self._kernel = _gaussian_kernel(self.config.blur_sigma)
        return blurred_mse_l1(out, y, kernel, self.config.l1_weight)

    def predict_density(
        self, stack: np.ndarray, *, camera: Any = None, **compute: Any
    ) -> np.ndarray:
        """Emitter density (T, Y·u, X·u), in emitters per fine pixel (``compute``: ``tile``,
        ``memory_mb``, ``device``, ``threads`` of :meth:`predict_maps`)."""
        from abbe.localize.fit import to_electrons

        frames = np.asarray(stack)
        frames = frames[None] if frames.ndim == 2 else frames
        maps = self.predict_maps(to_electrons(frames, camera).data, **compute)
        return np.clip(maps[:, 0], 0, None) / SPIKE

    def _locs_from_maps(self, maps: np.ndarray, threshold: float, qe: float) -> pd.DataFrame:
        from abbe.localize.fit import LOC_COLUMNS

        # In torch: clamping 500 maps of 256² costs as much as the network when done by numpy.
        d = (
            torch.from_numpy(np.ascontiguousarray(maps[:, 0], np.float32)).clamp(min=0) / SPIKE
        ).numpy()
        u = self.config.upsampling
        r = u // 2  # the window is about one camera pixel across
        # A peak is the largest of its (2r+1)² window, so a window holding more than
        # `threshold` has a peak above threshold / (2r+1)²: lower peaks (most of them, in the
        # network's faint background) cannot pass and are never gathered.
        t, iy, ix = _local_maxima(d, r, floor=threshold / (2 * r + 1) ** 2)
        fine = self.config.pixel_size_nm / u
        dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
        windows = _windows(d, t, iy, ix, dy.ravel(), dx.ravel())  # (N, window pixels)
        total = windows.sum(1)
        # The window's mass is the expected number of emitters there.
        keep = total > threshold
        t, iy, ix, windows, total = t[keep], iy[keep], ix[keep], windows[keep], total[keep]
        cx = (windows * dx.ravel()).sum(1) / total
        cy = (windows * dy.ravel()).sum(1) / total
        spread = np.sqrt(
            ((windows * ((dx.ravel() - cx[:, None]) ** 2 + (dy.ravel() - cy[:, None]) ** 2)).sum(1))
            / (2 * total)
        )
        precision = np.maximum(spread, 1 / np.sqrt(12)) * fine
        locs = pd.DataFrame(
            {
                "frame": t + 1,
                "x_nm": (ix + 0.5 + cx) * fine,
                "y_nm": (iy + 0.5 + cy) * fine,
                "photons": np.nan,  # Deep-STORM's density carries no brightness
                "background": np.nan,
                "sigma_nm": self.config.psf_sigma_nm,
                "uncertainty_nm": precision,
                "crlb_x_nm": np.nan,
                "crlb_y_nm": np.nan,
                "probability": np.minimum(total, 1.0),
            }
        )
        return locs[[*LOC_COLUMNS, "probability"]].reset_index(drop=True)


def _local_maxima(
    d: np.ndarray, r: int, floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, y, x) of the local maxima above ``floor`` (and above 0) of a (T, Y, X) density in
    (2r+1)² windows.

    The maxima come from :func:`abbe.localize.detect.find_peaks` (max pooling in torch, on
    all cores: the maps are ×16 larger than the frames, so this step costs as much as the
    network when done one-threaded). A plateau (an emitter between
    fine pixels) gives several equal maxima within one window: the last in raster order stays.
    Equal maxima are all above ``floor`` or none is, so the floor never changes which stays.
    """
    from scipy.spatial import cKDTree

    from abbe.localize.detect import find_peaks

    t, y, x = find_peaks(d, max(floor, 0.0), min_distance_px=r)
    if len(t) > 1:
        # Frames far apart in the first coordinate never pair; Chebyshev distance = window.
        pts = np.column_stack([t * (4.0 * d.shape[1] + 4 * r), y, x]).astype(np.float64)
        pairs = cKDTree(pts).query_pairs(r, p=np.inf, output_type="ndarray")
        keep = np.ones(len(t), bool)
        keep[pairs.min(axis=1)] = False  # np.nonzero is in raster order: the later one stays
        t, y, x = t[keep], y[keep], x[keep]
    return t, y, x


def _windows(
    d: np.ndarray, t: np.ndarray, iy: np.ndarray, ix: np.ndarray, dy: np.ndarray, dx: np.ndarray
) -> np.ndarray:
    """Values of ``d`` at (t, iy + dy, ix + dx) for every offset, zero outside: (N, offsets)."""
    _, h, w = d.shape
    yy, xx = iy[:, None] + dy[None], ix[:, None] + dx[None]
    inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    values = d[t[:, None], np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
    return np.where(inside, values, 0).astype(np.float64)
