"""The nuclei segmenter: U-Net → (foreground, normalized distance) → seeded watershed.

The network predicts, per pixel, the probability of lying inside a nucleus and the distance to
the nucleus' border divided by the largest such distance in that nucleus (1 at its centre, so
the map is the same for small and large nuclei). Seeds are the connected regions where that
distance exceeds ``seed_threshold``; a watershed on the negative distance, limited to the
foreground, grows them into instances (the distance-transform watershed of classical pipelines,
on a learned distance that separates touching nuclei where the image alone does not;
cf. Naylor et al., IEEE TMI 38:448 (2019); Ronneberger et al., MICCAI 2015).

Images are rescaled so that their nuclei have the size the model was trained on: the size is
measured by :func:`estimate_radius` (median inscribed radius of thresholded blobs), the same
measure stored for the training simulations (``typical_radius_px``).
:meth:`Segmenter.nucleus_size` says which size was used, how it compares with the training
nuclei, and warns (:class:`~abbe.errors.AbbeWarning`) where the result is doubtful: nuclei too
small for rescaling to restore, a size measure that disagrees with itself, or a zoom beyond its
limits. Nuclei whose bright texture fooled the measure are measured again at their own scale.

With ``merge_solidity`` set, two touching instances whose union is nearly convex are joined
afterwards (:func:`merge_convex`): a watershed line through a convex blob is more often a
nucleus cut in two at its texture than two nuclei, which meet at a waist.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from scipy.special import expit

from abbe.compute import network_on, torch_threads
from abbe.errors import AbbeWarning, InputError
from abbe.models.base import DEFAULT_MEMORY_MB, UNET_2015, Citation, ExportInfo, Model
from abbe.segment.config import SegmenterConfig
from abbe.segment.postprocess import drop_faint, measure_blobs, merge_convex, postprocess
from abbe.segment.stack import drop_thin, stitch_planes, trim_axially
from abbe.segment.targets import normalize_image
from abbe.segment.training import (
    BestByValidationAP,
    NucleiBatches,
    segmentation_loss,
    simulated_ap50,
)
from abbe.simulate.cells import nuclei_image

#: Zoom limits: below ``MIN_ZOOM`` a nucleus would need more than the image to reach the model's
#: size; above ``MAX_ZOOM`` upsampling invents no detail (measured: see :data:`SIZE_MARGIN`).
MIN_ZOOM, MAX_ZOOM = 1 / 32, 4.0

#: Nuclei whose radius is below the smallest training radius divided by this factor are flagged.
#: On simulated widefield nuclei with the bundled model (trained radii 7.1–13.1 px), measured
#: radii of 5.0–5.7 px gave AP@0.5 0.84–0.96, 4.0–4.5 px 0.79–0.88 and 3.6 px (the smallest the
#: measure reads) 0.28–0.73: upsampling cannot restore the detail that parts touching nuclei.
SIZE_MARGIN = 1.5

#: The size measure is called ambiguous when the area-weighted blob radius exceeds the median by
#: this factor (at most 2.2 on 24 training-like simulations; 13.6 on large textured nuclei that
#: the threshold broke into pieces).
AMBIGUITY = 3.0

#: Nuclei are measured again, smoothed at a quarter of the first radius; when that radius is
#: larger by this factor, the first measure caught bright texture inside nuclei larger than the
#: field's patches of chromatin and the second is used. Ratios measured: 0.87–1.12 on 16
#: training-like simulations, 1.1–1.4 on widefield nuclei 25–55 px in radius, 2.3–2.9 on nuclei
#: filling a 768² image (radius 290–320 px, first measured 100–125 px: split into four).
COARSE_RATIO = 2.0

NAYLOR_2019 = Citation(
    "Naylor et al. Segmentation of nuclei in histopathology images by deep regression of "
    "the distance map. IEEE TMI 38:448 (2019).",
    doi="10.1109/TMI.2018.2865709",
)


@dataclass(frozen=True)
class NucleusSize:
    """The nucleus size a segmentation worked at and how it compares with the model's training.

    Attributes
    ----------
    radius_px : inscribed radius of the image's nuclei, pixels (measured, or ``--diameter`` / 2).
    measured : whether it was measured (:func:`~abbe.segment.measure_blobs`) or given.
    zoom : factor the image was rescaled by before the network saw it.
    model_radius_px : the training images' median radius (the size ``zoom`` aims at).
    trained_radius_px : smallest and largest radius of the training images.
    warnings : what makes the result doubtful, with what to do (empty when nothing does).
    """

    radius_px: float
    measured: bool
    zoom: float
    model_radius_px: float | None
    trained_radius_px: tuple[float, float] | None
    warnings: tuple[str, ...] = ()

    @property
    def diameter_px(self) -> float:
        return 2 * self.radius_px

    def describe(self, pixel_size_nm: float | None = None) -> str:
        """One line: the size, how it was found, the model's training sizes and the zoom."""
        how = "measured" if self.measured else "given"
        size = f"{self.diameter_px:.1f} px"
        if pixel_size_nm:
            size += f" ({_length(self.diameter_px * pixel_size_nm)})"
        text = f"nuclei {size} across ({how})"
        if self.model_radius_px is not None:
            trained = ""
            if self.trained_radius_px is not None:
                lo, hi = self.trained_radius_px
                trained = f", trained on {2 * lo:.0f}–{2 * hi:.0f} px"
            text += f"; model {2 * self.model_radius_px:.0f} px{trained}"
        if abs(self.zoom - 1) > 0.05:
            text += f"; image rescaled ×{self.zoom:.3g} to the model's size"
        return text

    def as_dict(self, pixel_size_nm: float | None = None) -> dict[str, Any]:
        """The record kept with the labels (``nuclei`` in the label image's metadata)."""
        out: dict[str, Any] = {
            "diameter_px": round(self.diameter_px, 2),
            "measured": self.measured,
            "zoom": round(self.zoom, 4),
        }
        if pixel_size_nm:
            out["diameter_nm"] = round(self.diameter_px * pixel_size_nm, 1)
        if self.model_radius_px is not None:
            out["model_diameter_px"] = round(2 * self.model_radius_px, 2)
        if self.trained_radius_px is not None:
            out["trained_diameter_px"] = [round(2 * r, 2) for r in self.trained_radius_px]
        return out


def _length(nm: float) -> str:
    return f"{nm / 1000:.3g} µm" if nm >= 1000 else f"{nm:.3g} nm"


class Segmenter(Model):
    """Nuclei instance segmentation: ``fit`` on simulations (and optional pairs), ``predict``.

    Examples
    --------
    >>> model = Segmenter.load("nuclei-fluo")  # doctest: +SKIP
    >>> labels = model.predict(image)  # doctest: +SKIP
    """

    method = "segment"
    config_class = SegmenterConfig
    usage = "abbe segment IMAGE -m"

    def __init__(
        self, config: SegmenterConfig | None = None, network: torch.nn.Module | None = None
    ) -> None:
        super().__init__(config, network)
        if network is None:  # built now: the same seed gives the same initial weights
            self.network = self.build_network()

    def build_network(self) -> torch.nn.Module:
        from abbe.nn import UNet

        torch.manual_seed(self.config.training.seed)
        return UNet(self.config.network)

    def export_info(self) -> ExportInfo:
        """The network's maps (foreground, normalized distance, contacts) as probabilities;
        the zoom to the model's nucleus size and the watershed stay in abbe."""
        cfg = self.config
        lo, hi = cfg.percentiles
        channels = ("foreground", "distance", "contact")[: cfg.network.out_channels]
        size = (
            f" (median {2 * cfg.typical_radius_px:.0f} px across)" if cfg.typical_radius_px else ""
        )
        return ExportInfo(
            kind="image",
            spatial_axes="YX",
            input_description=(
                f"a fluorescence image of nuclei{size}; its {lo:g} and {hi:g} percentiles are "
                "mapped to 0 and 1"
            ),
            output_description=(
                "per pixel: probability of lying in a nucleus, and the distance to the nucleus' "
                "border over that nucleus' largest one (1 at its centre)"
                + (
                    ", and the probability of a contact between nuclei"
                    if len(channels) == 3
                    else ""
                )
            ),
            output_channels=channels,
            percentiles=(lo, hi),
            activation="sigmoid",
            output_range=(0.0, 1.0),
            citations=(UNET_2015, NAYLOR_2019),
            sample="nuclei",
            tags=("segmentation", "nuclei", "instance-segmentation", "distance-map"),
            limits=(
                f"Maps only: abbe segment zooms each image so its nuclei have the training "
                f"size{size} and grows seeds (distance above {cfg.seed_threshold:g}) inside the "
                f"foreground (above {cfg.foreground_threshold:g}) into labelled nuclei by a "
                "watershed; bioimage.io tools see the maps alone. Give images whose nuclei have "
                "about the training size.",
                *(
                    ("With the contact map, abbe seeds on distance × (1 − contact).",)
                    if len(channels) == 3
                    else ()
                ),
            ),
        )

    def fit(
        self,
        *,
        work_dir: str | Path,
        pairs: list[tuple[np.ndarray, np.ndarray]] | None = None,
        resume: bool = False,
        quiet: bool = True,
    ) -> Segmenter:
        """Train on simulated nuclei, mixed with crops of (image, labels) ``pairs`` if given."""
        tr = self.config.training
        if self.config.typical_radius_px is None:
            typical, lo, hi = _radius_stats(self.config)
            self.config = self.config.updated(typical_radius_px=typical, trained_radius_px=(lo, hi))
        pairs = [self._at_model_scale(img, lab) for img, lab in pairs or []]
        for img, _lab in pairs:
            if min(img.shape) < tr.patch_size:
                raise InputError(
                    f"an image of {img.shape} pixels at the model's nucleus size is smaller than "
                    f"the {tr.patch_size}-pixel training patches"
                )
        train = NucleiBatches(self.config, tr.steps_per_epoch, pairs=pairs)
        val = NucleiBatches(self.config, tr.validation_batches, validation=True, pairs=pairs)
        chooser = self._validation_ap_chooser()
        result = self._train(
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
            datasets=(train, val),
            loss_fn=segmentation_loss,
            extra_callbacks=[chooser] if chooser is not None else None,
        )
        self.metrics.update(
            {
                "val_loss": round(result.val_loss, 5),
                "steps": result.steps,
                "training_seconds": round(result.elapsed_s, 1),
            }
        )
        if chooser is not None and chooser.best_state is not None:
            chooser.restore(self.network)
            self.metrics["checkpoint"] = {
                "chosen_by": f"AP@0.5 on {self.config.validation_images} held-out simulated "
                f"{self.config.validation_image_px}² images",
                "epoch": chooser.best_epoch,
                "validation_ap50": round(chooser.best_ap, 4),
                "last_epoch_ap50": round(chooser.scores[-1][1], 4),
                "ap50_by_epoch": [round(ap, 4) for _, ap in chooser.scores],
            }
        return self

    def _validation_ap_chooser(self) -> BestByValidationAP | None:
        """The callback that keeps the epoch scoring best on held-out simulated images (None
        when ``validation_images`` is 0). Those images' seeds (70 000 on) are not among the
        training batches' (drawn at random below 2³¹) nor the size reference's (10 000 on)."""
        cfg = self.config
        if cfg.validation_images == 0:
            return None

        def score() -> float:
            device = str(next(self.network.parameters()).device)
            return simulated_ap50(
                lambda img: self.predict(img, scale=1.0, device=device, tile=None),
                cfg,
                cfg.validation_images,
                cfg.validation_image_px,
                seed=70_000,
            )

        return BestByValidationAP(score)

    def _at_model_scale(self, image: np.ndarray, labels: np.ndarray):
        """A user's (image, labels) pair zoomed so that its nuclei have the model's size."""
        img = np.asarray(image, dtype=np.float32)
        lab = np.asarray(labels)
        if img.shape != lab.shape:
            raise InputError(f"an image of shape {img.shape} has labels of shape {lab.shape}")
        zoom = self.scale_for(img)
        if abs(zoom - 1) <= 0.05:
            return img, lab.astype(np.int32)
        return ndimage.zoom(img, zoom, order=1), ndimage.zoom(lab, zoom, order=0).astype(np.int32)

    def predict_maps(
        self,
        image: np.ndarray,
        *,
        tile: int | str | None = "auto",
        tta: bool = False,
        levels: tuple[float, float] | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        device: str | None = "auto",
        threads: int | None = None,
        engine: str = "torch",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Foreground probability and normalized distance (Y, X) of an already scaled image.

        With a contact map (3-output networks) the distance is multiplied by the probability
        of not being at a contact, so seeds and watershed lines part touching nuclei there.

        The image is predicted tile by tile (``tile="auto"``: tiles as large as
        ``memory_mb`` allows; a number: that core edge; None: one window) with the network's
        full context, so the maps equal those of one pass and the labels drawn from them
        continue across tile borders. ``tta`` averages the maps of the image's eight
        rotations and mirror images (test-time augmentation: 8× the time, maps that depend
        less on the orientation of each nucleus). ``engine``: ``torch``, ``onnx`` or
        ``onnx-int8`` (ONNX Runtime on the CPU, :mod:`abbe.predict.engines`).
        """
        from abbe.predict.engines import check_device, check_engine

        check_device(check_engine(engine), device)
        compute = {"tile": tile, "levels": levels, "memory_mb": memory_mb, "device": device}
        with torch_threads(threads):
            if engine != "torch":
                from abbe.predict.engines import onnx_runner

                compute["onnx"] = onnx_runner(self, engine, threads=threads)  # type: ignore[arg-type]
            if not tta:
                return self._maps_once(image, **compute)
            fg_sum = dist_sum = None
            for k in range(8):
                view = _dihedral(image, k)
                maps = self._maps_once(view, **compute)
                fg, dist = (_dihedral(a, k, inverse=True) for a in maps)
                fg_sum = fg if fg_sum is None else fg_sum + fg
                dist_sum = dist if dist_sum is None else dist_sum + dist
            return fg_sum / 8, dist_sum / 8

    def _maps_once(
        self,
        image: np.ndarray,
        *,
        tile: int | str | None,
        levels: tuple[float, float] | None,
        memory_mb: float,
        device: str | None,
        onnx: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        x = np.ascontiguousarray(normalize_image(image, cfg.percentiles, levels)[None])
        net = self.network.eval()
        channels = cfg.network.out_channels
        if onnx is not None:  # ONNX Runtime gives the network's logits; the sigmoid is here

            def run_onnx(window: np.ndarray) -> np.ndarray:
                return expit(onnx(window[None])[0]).astype(np.float32)

            maps = self.windowed(run_onnx, x, tile=tile, memory_mb=memory_mb, out_channels=channels)
            return _split_maps(maps)
        with network_on(net, device) as dev:

            def run(window: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    out = net(torch.from_numpy(np.ascontiguousarray(window[None])).to(dev))[0]
                return torch.sigmoid(out).cpu().numpy()

            maps = self.windowed(run, x, tile=tile, memory_mb=memory_mb, out_channels=channels)
        return _split_maps(maps)

    def scale_for(self, image: np.ndarray, diameter_px: float | None = None) -> float:
        """Zoom that gives the image's nuclei the model's trained size (no warnings)."""
        return self.nucleus_size(image, diameter_px, warn=False).zoom

    def nucleus_size(
        self, image: np.ndarray, diameter_px: float | None = None, *, warn: bool = True
    ) -> NucleusSize:
        """The nuclei's size in a 2D image (measured unless ``diameter_px`` is given), the zoom
        to the model's size, and why the result may be doubtful; each reason is also emitted
        as an :class:`~abbe.errors.AbbeWarning` when ``warn`` is true.

        Doubtful: nuclei smaller than the smallest training nuclei by more than
        :data:`SIZE_MARGIN` (rescaling cannot restore their detail), a measure whose blobs
        disagree (:data:`AMBIGUITY`: large nuclei broken into pieces of texture), or a zoom
        beyond :data:`MIN_ZOOM`–:data:`MAX_ZOOM`. Larger nuclei than the training ones are
        rescaled to the model's size, which the tests show to work.
        """
        cfg = self.config
        typical = cfg.typical_radius_px
        notes: list[str] = []
        if diameter_px:
            radius = diameter_px / 2
        else:
            blobs = measure_blobs(image)
            radius = blobs.radius_px
            coarse = radius
            if radius / 4 > 2.0:  # (smoothing by 2 px or less measures the same again)
                coarse = measure_blobs(image, smooth_px=radius / 4).radius_px
            if coarse > COARSE_RATIO * radius:
                notes.append(
                    f"nuclei measured {2 * radius:.0f} px across, but {2 * coarse:.0f} px when "
                    "smoothed at that scale (bright patches of texture inside large nuclei): "
                    f"segmented at {2 * coarse:.0f} px; pass --diameter {2 * radius:.0f} if the "
                    "smaller size is right"
                )
                radius = coarse
            elif blobs.area_weighted_px > AMBIGUITY * radius:
                notes.append(
                    f"the nucleus size is ambiguous: most bright blobs are {2 * radius:.0f} px "
                    f"across, but most of the bright area lies in blobs "
                    f"{2 * blobs.area_weighted_px:.0f} px across (large nuclei broken into "
                    f"pieces by their texture?); if the nuclei are that large, pass --diameter "
                    f"{2 * blobs.area_weighted_px:.0f}"
                )
        trained = _trained_range(cfg)
        if trained is not None and radius < trained[0] / SIZE_MARGIN:
            notes.append(
                f"nuclei {2 * radius:.1f} px across, well below the sizes the model was trained on "
                f"({2 * trained[0]:.0f}–{2 * trained[1]:.0f} px): rescaling cannot restore the "
                "detail that parts touching nuclei, so expect missed and merged nuclei; image "
                "them with smaller pixels"
                + ("" if diameter_px else ", or pass --diameter if they are larger than measured")
            )
        zoom = 1.0 if typical is None else typical / radius
        if not MIN_ZOOM <= zoom <= MAX_ZOOM:
            limited = float(np.clip(zoom, MIN_ZOOM, MAX_ZOOM))
            notes.append(
                f"nuclei {2 * radius:.1f} px across would need a zoom of ×{zoom:.3g} to reach "
                f"the model's {2 * typical:.0f} px; limited to ×{limited:.3g}, so nuclei may be "
                "split or merged; resample the image"
            )
            zoom = limited
        if warn:
            for note in notes:
                warnings.warn(note, AbbeWarning, stacklevel=2)
        return NucleusSize(radius, not diameter_px, zoom, typical, trained, tuple(notes))

    def predict(
        self,
        image: np.ndarray,
        *,
        diameter_px: float | None = None,
        scale: float | None = None,
        tta: bool = False,
        levels: tuple[float, float] | None = None,
        **compute: Any,
    ) -> np.ndarray:
        """Instance labels (int32, 0 = background) of a 2D image (Y, X).

        ``diameter_px`` gives the nuclei's typical inscribed diameter instead of measuring it;
        ``scale`` gives the zoom directly (1: no rescaling); ``tta`` averages the network's
        maps over the image's 8 rotations and mirror images (see :meth:`predict_maps`);
        ``levels`` are the intensities mapped to 0 and 1 (default: the image's percentiles).
        ``compute``: ``tile``, ``memory_mb``, ``device``, ``threads`` of :meth:`predict_maps`.
        """
        img = np.asarray(image, dtype=np.float32)
        if img.ndim != 2:
            raise InputError(f"segmentation takes a 2D image (Y, X), got shape {img.shape}")
        if not np.isfinite(img).all():
            raise InputError("the image holds NaN or infinite values")
        zoom = scale if scale is not None else self.nucleus_size(img, diameter_px).zoom
        labels = self.instances(img, zoom=zoom, tta=tta, levels=levels, **compute)
        return drop_faint(img, labels, self.config.min_contrast)

    def instances(
        self,
        image: np.ndarray,
        *,
        zoom: float,
        tta: bool = False,
        levels: tuple[float, float] | None = None,
        window: tuple[tuple[int, int], tuple[int, int]] | None = None,
        **compute: Any,
    ) -> np.ndarray:
        """:meth:`predict`'s labels before faint objects are dropped (:func:`drop_faint`
        needs the whole image's statistics, which a tile of a distributed run has not seen):
        maps at ``zoom``, watershed, small objects dropped, convex pieces joined.

        ``window`` = (origin, whole shape) says that ``image`` is the part of a larger image
        starting at ``origin``: it is then rescaled on the whole image's grid (the pixel
        positions :func:`scipy.ndimage.zoom` samples there) and its rescaled part starts on a
        multiple of the network's size multiple, so a tile's maps equal the whole image's
        away from the tile's edges.
        """
        img = np.asarray(image, dtype=np.float32)
        rescale = abs(zoom - 1) > 0.05
        if window is not None and rescale:
            m = max(self.network_config.multiple)
            work, grid = _zoom_part(img, window[0], window[1], zoom, m)
        else:
            work = ndimage.zoom(img, zoom, order=1) if rescale else img
        fg, dist = self.predict_maps(work, tta=tta, levels=levels, **compute)
        if window is not None and rescale:
            fg = _unzoom_part(fg, grid, img.shape, window[0], window[1])
            dist = _unzoom_part(dist, grid, img.shape, window[0], window[1])
        elif work is not img:
            fg = _resize(fg, img.shape)
            dist = _resize(dist, img.shape)
        cfg = self.config
        typical = (cfg.typical_radius_px or 10.0) / zoom
        labels = postprocess(
            fg,
            dist,
            foreground_threshold=cfg.foreground_threshold,
            seed_threshold=cfg.seed_threshold,
            min_area=cfg.min_area_fraction * np.pi * typical**2,
        )
        if cfg.merge_solidity is not None:
            labels = merge_convex(labels, cfg.merge_solidity)
        return labels

    def predict_stack(
        self,
        stack: np.ndarray,
        *,
        diameter_px: float | None = None,
        scale: float | None = None,
        min_overlap: float = 0.5,
        min_planes: int = 2,
        tta: bool = False,
        **compute: Any,
    ) -> np.ndarray:
        """3D instance labels of a stack (Z, Y, X): each plane is segmented at one zoom
        (measured on the maximum projection, where every nucleus shows its full width), then
        objects of consecutive planes are joined into one 3D object when their overlap covers
        at least ``min_overlap`` of the smaller one (optimal one-to-one; the top and bottom caps
        of a nucleus are small sections inside larger ones). Objects seen in fewer than
        ``min_planes`` planes are dropped (a nucleus spans several planes). ``scale`` gives the
        zoom instead (e.g. from :meth:`nucleus_size` of the maximum projection).
        """
        from abbe.metrics.segmentation import _relabel

        vol = np.asarray(stack, dtype=np.float32)
        if vol.ndim != 3:
            raise InputError(f"3D segmentation takes a stack (Z, Y, X), got shape {vol.shape}")
        zoom = scale if scale is not None else self.nucleus_size(vol.max(axis=0), diameter_px).zoom
        # One intensity scale for the whole stack: a plane above or below the nuclei, normalized
        # on its own, would stretch its noise and out-of-focus light into false nuclei.
        levels = tuple(float(v) for v in np.percentile(vol, self.config.percentiles))
        planes = [
            self.predict(plane, scale=zoom, tta=tta, levels=levels, **compute) for plane in vol
        ]
        out = stitch_planes(planes, min_overlap)
        if vol.shape[0] > min_planes:
            out = drop_thin(out, min_planes)
        return _relabel(trim_axially(vol, out)).astype(np.int32)


def _split_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and distance from the network's maps (after the sigmoid)."""
    if maps.shape[0] == 3:
        # Contacts cut the distance map: seeds split there and watershed lines follow them.
        return maps[0], maps[1] * (1.0 - maps[2])
    return maps[0], maps[1]


def _dihedral(a: np.ndarray, k: int, *, inverse: bool = False) -> np.ndarray:
    """The k-th of the 8 rotations/mirror images of a (Y, X) array (k = 0: itself), or its
    inverse: a quarter turn k mod 4 times, mirrored left–right for k ≥ 4."""
    if not inverse:
        out = np.rot90(a, k % 4)
        return np.ascontiguousarray(out[:, ::-1] if k >= 4 else out)
    back = a[:, ::-1] if k >= 4 else a
    return np.ascontiguousarray(np.rot90(back, -(k % 4)))


def _zoom_part(
    part: np.ndarray,
    origin: tuple[int, int],
    whole: tuple[int, int],
    zoom: float,
    multiple: int,
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """``ndimage.zoom(whole_image, zoom, order=1)`` restricted to what ``part`` (at
    ``origin`` in the whole image) covers, from a multiple of ``multiple`` on.

    ``ndimage.zoom`` samples output pixel J of an axis of N pixels zoomed to M at input
    position J·(N − 1)/(M − 1); the same positions are sampled here (linear interpolation is
    local, so the values are the whole image's). Returns the rescaled part and, per axis,
    (first J, M, N) for :func:`_unzoom_part`."""
    axes_grid = []
    coords = []
    for o, n_part, n in zip(origin, part.shape, whole, strict=True):
        m_out = round(n * zoom)
        step = (n - 1) / (m_out - 1)
        first = 0 if o == 0 else -(-int(np.ceil(o / step)) // multiple) * multiple
        last = m_out if o + n_part == n else int(np.floor((o + n_part - 1) / step)) + 1
        axes_grid.append((first, m_out, n))
        coords.append(np.arange(first, last) * step - o)
    yy, xx = np.meshgrid(*coords, indexing="ij")
    work = ndimage.map_coordinates(part, [yy, xx], order=1, mode="nearest")
    return work.astype(np.float32), axes_grid


def _unzoom_part(
    maps: np.ndarray,
    grid: list[tuple[int, int, float]],
    shape: tuple[int, ...],
    origin: tuple[int, int],
    whole: tuple[int, int],
) -> np.ndarray:
    """Maps of a :func:`_zoom_part` back on the part's pixels, sampled where
    :func:`_resize` samples the whole image's maps (pixel i at J = i·(M − 1)/(N − 1))."""
    coords = []
    for (first, m_out, n), o, n_part in zip(grid, origin, shape, strict=True):
        step = (m_out - 1) / (n - 1)
        coords.append((np.arange(o, o + n_part)) * step - first)
    yy, xx = np.meshgrid(*coords, indexing="ij")
    return ndimage.map_coordinates(maps, [yy, xx], order=1, mode="nearest").astype(np.float32)


def _resize(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    factors = [s / n for s, n in zip(shape, a.shape, strict=True)]
    out = ndimage.zoom(a, factors, order=1)
    return out[: shape[0], : shape[1]]


def _radius_stats(cfg: SegmenterConfig, n: int = 16) -> tuple[float, float, float]:
    """Median, smallest and largest :func:`estimate_radius` over simulated training-like images
    (the model's size reference and the sizes its network has seen)."""
    radii = [
        measure_blobs(nuclei_image((256, 256), cfg.simulation, seed=10_000 + k).image).radius_px
        for k in range(n)
    ]
    return float(np.median(radii)), float(min(radii)), float(max(radii))


def _trained_range(cfg: SegmenterConfig) -> tuple[float, float] | None:
    """The training images' radius range; for models saved before it was stored, the bundled
    model's range relative to its median radius (0.64–1.18 ×), which the default simulation's
    radius range sets."""
    if cfg.trained_radius_px is not None:
        return cfg.trained_radius_px
    if cfg.typical_radius_px is None:
        return None
    return 0.64 * cfg.typical_radius_px, 1.18 * cfg.typical_radius_px
