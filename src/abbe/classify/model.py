"""Classification of whole images or of segmented objects (one crop per label) with a small
ResNet: calibrated probabilities (temperature scaling) and Grad-CAM saliency maps.

Each object is cut alone: other labelled objects inside its crop are replaced by background, as
in the training crops, so that neighbours cannot decide its class. Objects smaller than the
training objects of some class are flagged (:meth:`Classifier.check_sizes`): the crop is
resized to a fixed edge, so a small object is upsampled more than any training object of that
class, and its class then rests on its size (blur, noise grain) rather than its shape.

He et al., CVPR 2016 (ResNet); Guo et al., ICML 2017 (temperature scaling); Selvaraju et al.,
"Grad-CAM: visual explanations from deep networks via gradient-based localization", ICCV 2017.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy import ndimage

from abbe.compute import network_on, torch_threads
from abbe.data.normalize import PercentileNorm, normalize, percentile_range
from abbe.errors import AbbeWarning, InputError
from abbe.models.base import Citation, ExportInfo, Model, ModelConfig
from abbe.nn.resnet import ResNetConfig
from abbe.train.config import TrainingConfig

RESNET_2016 = Citation(
    "He, Zhang, Ren & Sun. Deep residual learning for image recognition. CVPR 2016.",
    doi="10.1109/CVPR.2016.90",
)
GUO_2017 = Citation(
    "Guo, Pleiss, Sun & Weinberger. On calibration of modern neural networks. ICML 2017.",
    url="https://arxiv.org/abs/1706.04599",
)


class ClassifierConfig(ModelConfig):
    """Everything needed to rebuild, use and retrain a classifier (``config.yaml``)."""

    version: Literal[1] = 1
    method: Literal["classify"] = "classify"
    classes: tuple[str, ...] = ("round", "elongated", "fragmented")
    crop_size: int = Field(64, ge=16, description="Edge every image or crop is resized to.")
    context: float = Field(1.5, ge=1.0, description="Object crops span this × its extent.")
    network: ResNetConfig = ResNetConfig(n_classes=3)
    normalization: PercentileNorm = PercentileNorm(low=1.0, high=99.8)
    training: TrainingConfig = TrainingConfig(batch_size=32, steps_per_epoch=50)
    temperature: float = Field(1.0, gt=0, description="Calibration: logits are divided by it.")
    class_sizes_px: dict[str, tuple[float, float]] | None = Field(
        None,
        description="Smallest and largest object (longer side of its box, pixels) of each "
        "class in the training data (set by fit_simulated); objects below every class's "
        "smallest are flagged.",
    )
    evidence_on_object: float = Field(
        1.0,
        ge=0,
        description="Weight of a training penalty on the share of the true class's activation "
        "map lying outside the object's mask (when masks are known): the model is taught to "
        "decide from the object, not from its surroundings (Ross et al., IJCAI 2017).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ClassifierConfig:
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError("classes must be at least two distinct names")
        if self.network.n_classes != len(self.classes):
            raise ValueError(
                f"network.n_classes {self.network.n_classes} != {len(self.classes)} classes"
            )
        return self


@dataclass(frozen=True)
class ObjectCrop:
    """A square crop around one labelled object, resized to the model's crop size.

    Attributes
    ----------
    label : the object's label value (0 for a whole image).
    crop : (S, S) float32 raw intensities.
    mask : (S, S) bool, the object's pixels in the crop.
    box : (y0, y1, x0, x1) of the crop in the image (may extend past its border).
    size_px : the object's size in the image, the longer side of its bounding box (pixels;
        0 for a whole image).
    """

    label: int
    crop: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    size_px: float = 0.0


def _window(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``image[y0:y1, x0:x1]``, reflecting where the box leaves the image."""
    y0, y1, x0, x1 = box
    h, w = image.shape
    pad = (max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w))
    part = image[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if any(p for pair in pad for p in pair):
        mode = "reflect" if min(part.shape) > max(max(p) for p in pad) else "edge"
        part = np.pad(part, pad, mode=mode)
    return part


def _resize(a: np.ndarray, size: int, order: int) -> np.ndarray:
    return ndimage.zoom(
        a, (size / a.shape[0], size / a.shape[1]), order=order, grid_mode=True, mode="nearest"
    )


def object_crops(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    size: int = 64,
    context: float = 1.5,
    isolate: bool = True,
) -> list[ObjectCrop]:
    """One square crop per label, centred on the object, ``context`` × its larger extent
    (at least 16 px), resized to ``size``.

    With ``isolate``, the pixels of other labelled objects in a crop are replaced by background
    pixels drawn from the same crop (seeded by the label): training nuclei stand alone, and a
    crop holding neighbours looked like a cluster of fragments to the bundled model, which
    called round nuclei "fragmented" with its evidence on the neighbours.
    """
    img = np.asarray(image, dtype=np.float32)
    lab = np.asarray(labels)
    if img.shape != lab.shape or img.ndim != 2:
        raise InputError(f"image {img.shape} and labels {lab.shape} must be the same 2D shape")
    crops = []
    for k, sl in enumerate(ndimage.find_objects(lab.astype(np.int64)), start=1):
        if sl is None:
            continue
        cy, cx = (sl[0].start + sl[0].stop) / 2, (sl[1].start + sl[1].stop) / 2
        extent = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
        half = max(8, int(np.ceil(context * extent / 2)))
        box = (int(cy) - half, int(cy) + half, int(cx) - half, int(cx) + half)
        window = _window(img, box)
        if isolate:
            window = _without_others(window, _window(lab, box), k)
        crop = _resize(window, size, 1)
        mask = _resize(_window((lab == k).astype(np.float32), box), size, 1) >= 0.5
        crops.append(ObjectCrop(k, crop.astype(np.float32), mask, box, float(extent)))
    return crops


def _without_others(window: np.ndarray, labels: np.ndarray, keep: int) -> np.ndarray:
    """``window`` with the pixels of labels other than ``keep`` replaced by its background
    pixels (label 0) drawn at random, which keeps the background's level and noise; by its 5th
    percentile where the window holds no background."""
    others = (labels > 0) & (labels != keep)
    if not others.any():
        return window
    out = window.copy()
    background = window[labels == 0]
    if background.size:
        rng = np.random.default_rng(keep)
        out[others] = rng.choice(background, int(others.sum()))
    else:
        out[others] = np.percentile(window, 5)
    return out


def whole_image_crop(image: np.ndarray, size: int) -> ObjectCrop:
    """A whole 2D image as one crop (padded to a square by reflection, resized)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise InputError(f"classification takes 2D images; got shape {img.shape}")
    h, w = img.shape
    side = max(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    box = (y0, y0 + side, x0, x0 + side)
    crop = _resize(_window(img, box), size, 1)
    return ObjectCrop(0, crop.astype(np.float32), np.ones((size, size), bool), box)


class _CropBatches:
    """Batch ``i`` of epoch ``e``: crops drawn with a generator seeded by ``(seed, e, i)``,
    each turned by a random symmetry of the square."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        cfg: TrainingConfig,
        n: int,
        stream: int,
        masks: np.ndarray | None = None,
    ):
        self.x, self.y, self.cfg, self.n, self.stream = x, y, cfg, n, stream
        self.masks = masks
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import torch

        from abbe.data.patches import augment_dihedral, batch_rng

        epoch = 0 if self.stream else self.epoch  # validation: the same batches every epoch
        rng = batch_rng(self.cfg.seed, epoch, i, self.stream)
        idx = rng.integers(0, len(self.x), self.cfg.batch_size)
        m = None if self.masks is None else self.masks[idx][:, None].astype(np.float32)
        x, m = augment_dihedral([self.x[idx], m], rng)
        return (
            torch.from_numpy(np.ascontiguousarray(x)),
            torch.from_numpy(self.y[idx]),
            torch.zeros(0) if m is None else torch.from_numpy(np.ascontiguousarray(m)),
        )


def _classification_loss(network: Any, evidence_weight: float):
    """Cross-entropy, plus (with object masks as the batch's weight) the share of the true
    class's positive activation map outside the object, and a hinge that asks for positive
    evidence on the object (a class may otherwise win only by the others' negative evidence,
    which leaves its saliency map empty)."""
    from torch.nn import functional as F

    def loss(out, target, masks):
        ce = F.cross_entropy(out, target)
        feats = getattr(network, "last_features", None)
        if masks.numel() == 0 or evidence_weight == 0 or feats is None:
            return ce
        raw = network.class_maps(feats, target)
        cam = F.relu(raw)
        inside = F.adaptive_avg_pool2d(masks, cam.shape[-2:])[:, 0]
        outside = (cam * (1 - inside)).sum(dim=(1, 2)) / cam.sum(dim=(1, 2)).clamp_min(1e-6)
        on_object = (raw * inside).sum(dim=(1, 2)) / inside.sum(dim=(1, 2)).clamp_min(1e-6)
        absent = F.relu(1.0 - on_object)
        return ce + evidence_weight * (outside.mean() + 0.1 * absent.mean())

    return loss


class Classifier(Model):
    """A ResNet classifier with its normalization and calibration.

    Examples
    --------
    >>> clf = Classifier().fit_simulated(n_per_class=300)              # doctest: +SKIP
    >>> clf.predict_proba([crop1, crop2])                              # doctest: +SKIP
    >>> maps = clf.saliency([crop1])        # Grad-CAM, (1, 64, 64)   # doctest: +SKIP
    """

    method = "classify"
    config_class = ClassifierConfig
    usage = "abbe classify IMAGE --labels LABELS -m"

    def build_network(self) -> Any:
        from abbe.nn.resnet import ResNet

        return ResNet(self.config.network)

    def export_info(self) -> ExportInfo:
        """Class probabilities of one percentile-normalized crop: logits divided by the
        calibration temperature, then softmax (as :meth:`predict_proba`)."""
        cfg = self.config
        norm = cfg.normalization
        s = cfg.crop_size
        return ExportInfo(
            kind="classes",
            spatial_axes="YX",
            input_description=(
                f"one {s}×{s} crop centred on one object ({cfg.context:g}× its extent, other "
                f"objects replaced by background); its {norm.low:g} and {norm.high:g} "
                "percentiles are mapped to 0 and 1"
            ),
            output_description=(
                f"calibrated probability of each class ({', '.join(cfg.classes)}); logits are "
                f"divided by the temperature {cfg.temperature:.4g} before the softmax"
            ),
            output_channels=tuple(cfg.classes),
            percentiles=(norm.low, norm.high),
            output_gain=1.0 / cfg.temperature,
            activation="softmax",
            output_range=(0.0, 1.0),
            fixed_size=s,
            citations=(RESNET_2016, GUO_2017),
            tags=("classification", "nuclei", "calibrated"),
            limits=(
                "abbe classify cuts one crop per labelled object, resizes it to the crop edge "
                "and warns about objects smaller than the training ones of some class "
                "(their class then rests on size, not shape); bioimage.io tools take the crop "
                "as given.",
            ),
        )

    def example_input(self, size: int | None = None) -> np.ndarray:
        """One normalized crop as the network takes it, ``(1, 1, S, S)``."""
        s = size or self.config.crop_size
        return np.random.default_rng(0).random((1, 1, s, s), dtype=np.float32)

    # ------------------------------------------------------------------ data
    def prepare(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Resize (if needed) and percentile-normalize crops into ``(N, 1, S, S)`` float32."""
        s = self.config.crop_size
        norm = self.config.normalization
        out = np.empty((len(crops), 1, s, s), np.float32)
        for i, c in enumerate(crops):
            a = np.asarray(c, dtype=np.float32)
            if a.ndim != 2:
                raise InputError(f"crop {i} has shape {a.shape}; classification takes 2D images")
            if not np.all(np.isfinite(a)):
                raise InputError(f"crop {i} contains NaN or infinite values")
            if a.shape != (s, s):
                a = whole_image_crop(a, s).crop
            lo, hi = percentile_range(a, norm.low, norm.high) if np.ptp(a) > 0 else (0.0, 1.0)
            out[i, 0] = normalize(a, lo, hi)
        return out

    def _class_index(self, labels: Sequence[Any]) -> np.ndarray:
        names = list(self.config.classes)
        idx = []
        for v in labels:
            if isinstance(v, int | np.integer) and not isinstance(v, bool):
                if not 0 <= int(v) < len(names):
                    raise InputError(f"class index {v} outside 0…{len(names) - 1}")
                idx.append(int(v))
            elif str(v) in names:
                idx.append(names.index(str(v)))
            else:
                raise InputError(f"unknown class {v!r}; the classes are {', '.join(names)}")
        return np.asarray(idx, np.int64)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        crops: Sequence[np.ndarray],
        labels: Sequence[Any],
        *,
        validation: tuple[Sequence[np.ndarray], Sequence[Any]] | None = None,
        masks: Sequence[np.ndarray | None] | None = None,
        work_dir: str | Path | None = None,
        resume: bool = False,
        quiet: bool = True,
    ) -> Classifier:
        """Train on crops (or whole images) and their classes (names or indices), then fit the
        temperature on the validation crops (default: every 5th crop, held out). With the
        objects' ``masks`` (crop-sized, e.g. from :func:`object_crops`), the model is also
        taught to find its evidence on the object (``evidence_on_object``)."""
        import torch

        if len(crops) != len(labels):
            raise InputError(f"{len(crops)} images but {len(labels)} labels")
        x, y = self.prepare(crops), self._class_index(labels)
        m = None
        if masks is not None and all(k is not None for k in masks) and len(masks) == len(x):
            m = np.stack([np.asarray(k, bool) for k in masks])
            if m.shape[1:] != x.shape[2:]:
                raise InputError(f"masks {m.shape[1:]} must match the crops {x.shape[2:]}")
        if validation is None:
            held = np.arange(len(x)) % 5 == 4
            vx, vy = x[held], y[held]
            x, y = x[~held], y[~held]
            m = None if m is None else m[~held]
        else:
            vx, vy = self.prepare(validation[0]), self._class_index(validation[1])
        if len(x) == 0 or len(vx) == 0:
            raise InputError("too few images to train and validate; give at least 5")
        cfg = self.config.training
        torch.manual_seed(cfg.seed)
        if not resume:
            self._network = None
        train = _CropBatches(x, y, cfg, cfg.steps_per_epoch, 0, masks=m)
        val = _CropBatches(vx, vy, cfg, cfg.validation_batches, 1)
        result = self._train(
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
            datasets=(train, val),
            loss_fn=_classification_loss(self.network, self.config.evidence_on_object),
        )
        self.metrics = {
            **result.summary(),
            "n_training": len(x),
            "n_validation": len(vx),
        }
        self.calibrate_prepared(vx, vy)
        return self

    def fit_simulated(
        self,
        *,
        n_per_class: int = 400,
        n_validation: int = 100,
        work_dir: str | Path | None = None,
        resume: bool = False,
        quiet: bool = True,
    ) -> Classifier:
        """Train on simulated nuclei of the shape classes round, elongated and fragmented
        (:func:`abbe.simulate.cells.nucleus_field`), cropped as user objects are."""
        from abbe.simulate.cells import NUCLEUS_CLASSES

        unknown = set(self.config.classes) - set(NUCLEUS_CLASSES)
        if unknown:
            raise InputError(
                f"no simulation for classes {sorted(unknown)}; simulated classes are "
                f"{', '.join(NUCLEUS_CLASSES)} (train on your own crops instead)"
            )
        seed = self.config.training.seed
        objects, ys = simulated_objects(self.config, n_per_class, seed=seed)
        vx, vy, _ = simulated_crops(self.config, n_validation, seed=seed + 1_000_003)
        self.config = self.config.updated(
            training_data={
                "simulated": "abbe.simulate.cells.nucleus_field",
                "per_class": n_per_class,
                "seed": seed,
            },
            class_sizes_px=class_sizes([c.size_px for c in objects], ys),
        )
        return self.fit(
            [c.crop for c in objects],
            ys,
            validation=(vx, vy),
            masks=[c.mask for c in objects],
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
        )

    # ------------------------------------------------------------------ predict
    def logits(
        self,
        crops: Sequence[np.ndarray],
        batch: int = 256,
        *,
        device: str | None = "auto",
        threads: int | None = None,
    ) -> np.ndarray:
        """Uncalibrated class scores ``(N, n_classes)``, ``batch`` crops at a time on
        ``device`` (``auto``: CUDA when present) with ``threads`` CPU threads."""
        import torch

        x = self.prepare(crops)
        net = self.network.eval()
        out = []
        with network_on(net, device) as dev, torch_threads(threads), torch.inference_mode():
            for i in range(0, len(x), batch):
                out.append(net(torch.from_numpy(x[i : i + batch]).to(dev)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.config.classes)))

    def predict_proba(self, crops: Sequence[np.ndarray], **compute: Any) -> np.ndarray:
        """Calibrated class probabilities, ``(N, n_classes)`` (``device``, ``threads`` as in
        :meth:`logits`)."""
        return _softmax(self.logits(crops, **compute) / self.config.temperature)

    def predict(self, crops: Sequence[np.ndarray], **compute: Any) -> list[str]:
        """The most probable class name per crop."""
        names = self.config.classes
        return [names[i] for i in self.predict_proba(crops, **compute).argmax(axis=1)]

    def calibrate(self, crops: Sequence[np.ndarray], labels: Sequence[Any]) -> float:
        """Fit the temperature on held-out crops (minimum negative log-likelihood)."""
        return self.calibrate_prepared(self.prepare(crops), self._class_index(labels))

    def calibrate_prepared(self, x: np.ndarray, y: np.ndarray) -> float:
        import torch
        from scipy import optimize

        with torch.inference_mode():
            z = self.network.eval()(torch.from_numpy(x)).numpy().astype(np.float64)

        def nll(log_t: float) -> float:
            p = _softmax(z / np.exp(log_t))
            return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

        best = optimize.minimize_scalar(nll, bounds=(-3, 3), method="bounded")
        t = float(np.exp(best.x))
        from abbe.metrics.classification import expected_calibration_error as ece

        self.metrics["calibration"] = {
            "temperature": round(t, 4),
            "ece_before": round(ece(_softmax(z), y), 4),
            "ece_after": round(ece(_softmax(z / t), y), 4),
            "n": len(y),
        }
        self.config = self.config.updated(temperature=t)
        return t

    def smallest_size_px(self) -> float | None:
        """The smallest object size (pixels) at which the training data held every class, or
        None when the model does not know its training sizes (trained on a table)."""
        sizes = self.config.class_sizes_px
        if not sizes or set(sizes) != set(self.config.classes):
            return None
        return max(lo for lo, _ in sizes.values())

    def check_sizes(self, sizes_px: Sequence[float], *, warn: bool = True) -> np.ndarray:
        """Whether each object (size: the longer side of its box, pixels) is large enough for
        the model to have seen every class at its size; one :class:`~abbe.errors.AbbeWarning`
        for those that are not, when ``warn`` is true.

        The crops are resized to a fixed edge, so a smaller object is upsampled more; below the
        smallest training object of a class, the model never saw that class so blurred and
        cannot tell it from the others by shape (on simulated widefield nuclei, all round,
        the bundled model called 37–95 % of those under 19 px "fragmented", 2–5 % of those of
        26–40 px). Larger objects are shrunk, which keeps their shape and is not flagged.
        """
        sizes = np.asarray(sizes_px, dtype=np.float64)
        smallest = self.smallest_size_px()
        if smallest is None or sizes.size == 0:
            return np.ones(sizes.shape, bool)
        ok = sizes >= smallest
        if warn and not ok.all():
            unseen = sorted(
                f"{name} below {lo:.0f} px"
                for name, (lo, _) in (self.config.class_sizes_px or {}).items()
                if lo > sizes[~ok].min()
            )
            warnings.warn(
                f"{int((~ok).sum())} of {sizes.size} objects are {sizes[~ok].min():.0f}–"
                f"{sizes[~ok].max():.0f} px across, smaller than the model's training objects "
                f"({', '.join(unseen)}): their class rests on their size more than their shape "
                "(small nuclei tend to be called 'fragmented'; column in_training_range is "
                "false); image them with smaller pixels or train on your own objects "
                "(abbe train classify --table)",
                AbbeWarning,
                stacklevel=2,
            )
        return ok

    def saliency(self, crops: Sequence[np.ndarray], classes: Sequence[int] | None = None):
        """Grad-CAM maps ``(N, S, S)`` in [0, 1]: where the evidence for the predicted (or the
        given) class lies — the last stage's feature maps weighted by the class score's mean
        gradient, positive part, upsampled to the crop."""
        import torch
        from torch.nn import functional as F

        x = torch.from_numpy(self.prepare(crops))
        net = self.network.eval()
        with torch.enable_grad():
            feats = net.features(x).detach().requires_grad_(True)
            logits = net.classify(feats)
            target = logits.argmax(dim=1) if classes is None else torch.as_tensor(classes)
            score = logits.gather(1, target[:, None]).sum()
            (grad,) = torch.autograd.grad(score, feats)
        weights = grad.mean(dim=(-2, -1), keepdim=True)
        cam = F.relu((weights * feats).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)[:, None, None]
        return (cam / peak).detach().numpy()

    def __repr__(self) -> str:
        return f"Classifier(name={self.config.name!r}, classes={self.config.classes!r})"


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def simulated_crops(
    config: ClassifierConfig, n_per_class: int, *, seed: int = 0
) -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
    """Crops, class names and object masks of simulated nuclei of each class."""
    objects, names = simulated_objects(config, n_per_class, seed=seed)
    return [c.crop for c in objects], names, [c.mask for c in objects]


def simulated_objects(
    config: ClassifierConfig, n_per_class: int, *, seed: int = 0
) -> tuple[list[ObjectCrop], list[str]]:
    """The :class:`ObjectCrop` (with its size) and class name of simulated nuclei of each
    class (:func:`abbe.simulate.cells.nucleus_field`)."""
    from abbe.simulate.cells import nucleus_field

    objects, names = [], []
    seeds = np.random.SeedSequence(seed).spawn(len(config.classes))
    for kind, ss in zip(config.classes, seeds, strict=True):
        rng = np.random.default_rng(ss)
        for _ in range(n_per_class):
            f = nucleus_field(kind, seed=rng)
            (c,) = object_crops(
                f.image, f.mask.astype(np.int32), size=config.crop_size, context=config.context
            )
            objects.append(c)
            names.append(kind)
    return objects, names


def class_sizes(sizes_px: Sequence[float], names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Smallest and largest object size of each class (``ClassifierConfig.class_sizes_px``)."""
    out: dict[str, list[float]] = {}
    for size, name in zip(sizes_px, names, strict=True):
        out.setdefault(str(name), []).append(float(size))
    return {name: (min(v), max(v)) for name, v in out.items()}


def saliency_inside(maps: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    """Fraction of each saliency map's mass inside its object's mask."""
    out = []
    for m, k in zip(maps, masks, strict=True):
        total = float(m.sum())
        out.append(float(m[np.asarray(k, bool)].sum()) / total if total > 0 else 0.0)
    return np.asarray(out)


def paste_saliency(
    maps: np.ndarray, crops: Sequence[ObjectCrop], shape: tuple[int, int]
) -> np.ndarray:
    """One image-sized saliency map from the maps of crops: each map resized to its crop's box
    and put back where the crop came from (the maximum where boxes overlap).

    Parameters
    ----------
    maps : (N, h, w) saliency of each crop, as :meth:`Classifier.saliency` gives.
    crops : the crops, whose ``box`` (y0, y1, x0, x1) may reach past the image.
    shape : (Y, X) of the image.
    """
    canvas = np.zeros(shape, np.float32)
    for cam, c in zip(maps, crops, strict=True):
        y0, y1, x0, x1 = c.box
        big = ndimage.zoom(cam, ((y1 - y0) / cam.shape[0], (x1 - x0) / cam.shape[1]), order=1)
        big = big[: y1 - y0, : x1 - x0]
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(shape[0], y1), min(shape[1], x1)
        part = big[ys - y0 : ye - y0, xs - x0 : xe - x0]
        canvas[ys:ye, xs:xe] = np.maximum(canvas[ys:ye, xs:xe], part)
    return canvas
