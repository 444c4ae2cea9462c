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

With ``merge_solidity`` set, two touching instances whose union is nearly convex are joined
afterwards (:func:`merge_convex`): a watershed line through a convex blob is more often a
nucleus cut in two at its texture than two nuclei, which meet at a waist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from scipy import ndimage

from abbe.errors import InputError
from abbe.models.base import DEFAULT_MEMORY_MB, Model, ModelConfig, resolve_device, torch_threads
from abbe.nn import UNetConfig
from abbe.simulate.cells import NucleiImageConfig, nuclei_image
from abbe.train import TrainingConfig


class SegmenterConfig(ModelConfig):
    """A segmentation model: network, training simulations, post-processing, scale."""

    version: Literal[1] = 1
    method: Literal["segment"] = "segment"
    name: str = "segmenter"
    network: UNetConfig = UNetConfig(
        in_channels=1, out_channels=2, width=16, depth=3, residual=False
    )
    simulation: NucleiImageConfig = NucleiImageConfig()
    training: TrainingConfig = TrainingConfig(
        patch_size=128, batch_size=8, steps_per_epoch=50, max_epochs=200, learning_rate=2e-3
    )
    real_fraction: float = Field(
        0.5, ge=0, le=1, description="With user pairs: fraction of each batch from them."
    )
    typical_radius_px: float | None = Field(
        None, gt=0, description="estimate_radius of the training images (set by fit)."
    )
    foreground_threshold: float = Field(0.5, gt=0, lt=1)
    seed_threshold: float = Field(0.5, gt=0, lt=1)
    min_area_fraction: float = Field(
        0.1, ge=0, description="Objects smaller than this × π·typical radius² are dropped."
    )
    min_contrast: float = Field(
        0.35,
        ge=0,
        lt=1,
        description="Objects whose mean intensity rises above the background by less than "
        "this fraction of the typical (area-weighted median) object's rise are dropped "
        "(0: keep all).",
    )
    merge_solidity: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Touching instances whose union has at least this solidity (area over "
        "convex hull area) are joined into one (None: off).",
    )
    contact_weight: float = Field(
        0.0,
        ge=0,
        description="Training: extra loss weight w0 on pixels between and at the contacts of "
        "touching nuclei, w0·exp(−(d1 + d2)²/2σ²) (Ronneberger et al. 2015); 0: off.",
    )
    contact_sigma_px: float = Field(3.0, gt=0, description="σ of that weight, pixels.")
    contact_px: float = Field(
        2.0,
        gt=0,
        description="Networks with 3 outputs: the third marks pixels within this distance of "
        "two nuclei (contacts); seeds and watershed lines avoid them.",
    )
    percentiles: tuple[float, float] = (1.0, 99.0)
    gamma: tuple[float, float] = Field(
        (0.75, 1.5),
        description="Training: each normalized patch is raised to a power drawn from this "
        "range (log-uniform), so the model does not learn the simulator's intensity profile.",
    )

    @model_validator(mode="after")
    def _two_or_three_maps(self) -> SegmenterConfig:
        if self.network.out_channels not in (2, 3):
            raise ValueError(
                "network.out_channels must be 2 (foreground, distance) or 3 (and contacts), "
                f"not {self.network.out_channels}"
            )
        return self


# ------------------------------------------------------------------------------ inputs, targets
def normalize_image(
    image: np.ndarray,
    percentiles: tuple[float, float],
    levels: tuple[float, float] | None = None,
) -> np.ndarray:
    """Percentile normalization (low → 0, high → 1), robust to a few hot pixels; ``levels``
    gives the two values directly (e.g. a whole stack's percentiles for one of its planes)."""
    x = np.asarray(image, dtype=np.float32)
    lo, hi = levels if levels is not None else np.percentile(x, percentiles)
    return ((x - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)


def segmentation_targets(labels: np.ndarray, *, contact_px: float | None = None) -> np.ndarray:
    """(2, Y, X) targets: foreground, and each object's border distance over its maximum;
    with ``contact_px``, a third map: the contacts (:func:`contact_map`)."""
    lab = np.asarray(labels)
    dist = np.zeros(lab.shape, np.float32)
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        inside = lab[grown] == i
        d = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
        dist[grown][inside] = (d[inside] / max(float(d.max()), 1e-6)).astype(np.float32)
    maps = [(lab > 0).astype(np.float32), dist]
    if contact_px is not None:
        maps.append(contact_map(lab, contact_px))
    return np.stack(maps)


def contact_map(labels: np.ndarray, width_px: float) -> np.ndarray:
    """1 where a pixel lies within ``width_px`` of two different nuclei (itself counted),
    else 0: the lines along which touching nuclei meet, and narrow gaps between them.

    The third map of the touching-border class of DSB2018 solutions (Caicedo et al., Nat
    Methods 16:1247 (2019), "3-class" U-Nets with a boundary class): on its own the distance
    map must find contacts from a valley it has to draw where the image often shows none.
    """
    lab = np.asarray(labels)
    r = int(np.ceil(width_px))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = yy**2 + xx**2 <= width_px**2
    highest = ndimage.maximum_filter(lab, footprint=disk, mode="constant", cval=0)
    big = np.iinfo(np.int32).max
    lowest = ndimage.minimum_filter(
        np.where(lab > 0, lab, big).astype(np.int32), footprint=disk, mode="constant", cval=big
    )
    return ((lowest < big) & (highest != lowest)).astype(np.float32)


def contact_weights(labels: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """Loss weights 1 + w0·exp(−(d1 + d2)²/2σ²) that single out where nuclei touch.

    d1 is a pixel's distance to the nearest nucleus (0 inside one), d2 its distance to the
    nearest *other* nucleus, so the weight peaks in the thin background between two nuclei
    and on both sides of a contact where they are pressed together: the few pixels that
    decide whether a watershed separates them (the U-Net's separation border weight,
    Ronneberger et al., MICCAI 2015, extended to nuclei that share a border).
    """
    lab = np.asarray(labels)
    weights = np.ones(lab.shape, np.float32)
    fg = lab > 0
    if w0 <= 0 or not fg.any():
        return weights
    d1, (iy, ix) = ndimage.distance_transform_edt(~fg, return_indices=True)
    nearest = lab[iy, ix]
    d2 = np.full(lab.shape, np.inf)
    reach = int(np.ceil(3 * sigma))  # beyond d1 + d2 = 3σ the weight is < 1.2 % of w0
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        box = tuple(
            slice(max(s.start - 2 * reach, 0), min(s.stop + 2 * reach, n))
            for s, n in zip(sl, lab.shape, strict=True)
        )
        others = (lab[box] > 0) & (lab[box] != k)
        if not others.any():
            continue
        mine = nearest[box] == k
        d2[box][mine] = ndimage.distance_transform_edt(~others)[mine]
    near = np.isfinite(d2)
    weights[near] += (w0 * np.exp(-((d1[near] + d2[near]) ** 2) / (2 * sigma**2))).astype(
        np.float32
    )
    return weights


def segmentation_loss(out: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """BCE on the foreground plus 5 × MSE of the sigmoid distance map (plus BCE on the contact
    map when there are 3 channels), averaged with per-pixel ``weight`` (N, Y, X) when it is
    not empty."""
    bce = F.binary_cross_entropy_with_logits(out[:, 0], y[:, 0], reduction="none")
    se = (torch.sigmoid(out[:, 1]) - y[:, 1]) ** 2
    per_pixel = bce + 5.0 * se
    if y.shape[1] > 2:
        per_pixel = per_pixel + F.binary_cross_entropy_with_logits(
            out[:, 2], y[:, 2], reduction="none"
        )
    if weight.numel() == 0:
        return per_pixel.mean()
    return (per_pixel * weight).sum() / weight.sum()


def _contact_px(cfg: SegmenterConfig) -> float | None:
    """Width of the contact target, or None for two-output networks (no contact map)."""
    return cfg.contact_px if cfg.network.out_channels == 3 else None


class NucleiBatches(torch.utils.data.Dataset):
    """Batches of simulated nuclei patches (and, when given, crops of user pairs)."""

    def __init__(
        self,
        cfg: SegmenterConfig,
        n_batches: int,
        *,
        validation: bool = False,
        pairs: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.cfg, self.n_batches = cfg, n_batches
        self.stream = 1 if validation else 0
        self.epoch = 0
        self.pairs = pairs or []

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from abbe.data import batch_rng
        from abbe.data.patches import augment_dihedral

        cfg, tr = self.cfg, self.cfg.training
        rng = batch_rng(tr.seed, 0 if self.stream else self.epoch, i, self.stream)
        size = tr.patch_size
        xs, ys, ws = [], [], []
        for _ in range(tr.batch_size):
            if self.pairs and rng.random() < cfg.real_fraction:
                img, lab = self.pairs[int(rng.integers(len(self.pairs)))]
                y0 = int(rng.integers(img.shape[0] - size + 1))
                x0 = int(rng.integers(img.shape[1] - size + 1))
                img = img[y0 : y0 + size, x0 : x0 + size]
                lab = lab[y0 : y0 + size, x0 : x0 + size]
            else:
                sim = nuclei_image((size, size), cfg.simulation, seed=int(rng.integers(2**31)))
                img, lab = sim.image, sim.labels
            x = normalize_image(img, cfg.percentiles)
            g = float(np.exp(rng.uniform(*np.log(cfg.gamma))))
            xs.append((np.clip(x, 0, None) ** g)[None].astype(np.float32))
            ys.append(segmentation_targets(lab, contact_px=_contact_px(cfg)))
            if cfg.contact_weight > 0:
                ws.append(contact_weights(lab, cfg.contact_weight, cfg.contact_sigma_px))
        w = np.stack(ws) if ws else None
        x, y, w = augment_dihedral([np.stack(xs), np.stack(ys), w], rng)
        weight = torch.zeros(0) if w is None else torch.from_numpy(np.ascontiguousarray(w))
        return torch.from_numpy(x), torch.from_numpy(y), weight


# ------------------------------------------------------------------------------ post-processing
def postprocess(
    foreground: np.ndarray,
    distance: np.ndarray,
    *,
    foreground_threshold: float = 0.5,
    seed_threshold: float = 0.5,
    min_area: float = 0.0,
) -> np.ndarray:
    """Label image (int32) from foreground probability and normalized distance maps."""
    from skimage.segmentation import watershed

    mask = foreground > foreground_threshold
    seeds, _ = ndimage.label(mask & (distance > seed_threshold))
    labels = watershed(-distance, seeds, mask=mask)
    # Foreground blobs that hold no seed (small or faint nuclei) become objects of their own.
    rest, n_rest = ndimage.label(mask & (labels == 0))
    if n_rest:
        labels = np.where(rest > 0, rest + labels.max(), labels)
    if min_area > 0 and labels.max() > 0:
        areas = np.bincount(labels.ravel())
        small = areas < min_area
        small[0] = False
        labels[small[labels]] = 0
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)[0].astype(np.int32)


def _touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (a < b) of labels that are 8-neighbours somewhere in a 2D label image."""
    pairs: set[tuple[int, int]] = set()
    h, w = labels.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = labels[: h - dy, max(-dx, 0) : w - max(dx, 0)]
        b = labels[dy:, max(dx, 0) : w + min(dx, 0) or None]
        hit = (a != b) & (a > 0) & (b > 0)
        lo = np.minimum(a[hit], b[hit])
        hi = np.maximum(a[hit], b[hit])
        pairs.update(zip(lo.tolist(), hi.tolist(), strict=True))
    return pairs


def _solidity(mask: np.ndarray) -> float:
    """Area over the area of the convex hull (both in pixels) of a 2D mask.

    The hull is that of the pixel centres, so a digital disk scores 1 at any size (the hull of
    the pixel corners, as in ``regionprops``, gives 0.93 at radius 10 and 0.98 at 40: small
    objects would look concave)."""
    from skimage.morphology import convex_hull_image

    hull = convex_hull_image(mask, offset_coordinates=False)
    return float(mask.sum()) / max(float(hull.sum()), 1.0)


def _union_box(p: tuple[slice, ...], q: tuple[slice, ...]) -> tuple[slice, ...]:
    """The bounding box of two bounding boxes."""
    return tuple(
        slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(p, q, strict=True)
    )


def merge_convex(labels: np.ndarray, min_solidity: float) -> np.ndarray:
    """Join touching instances of a 2D label image while their union is nearly convex.

    Greedy: the touching pair whose union has the highest solidity (:func:`_solidity`) is
    joined first, as long as that solidity is at least ``min_solidity``; a joined object may
    be joined again. Two nuclei that touch meet at notches, so their union is concave (on
    simulated touching pairs the solidity has median 0.89 and 95th percentile 0.95; on the
    DSB2018 sample's annotated pairs 0.71–0.98, median 0.90), whereas a watershed line drawn
    through one nucleus at its texture leaves a union as convex as the nucleus. A threshold
    above nearly all true pairs undoes such over-splitting (cf. region merging by shape
    convexity in classical nuclei segmentation, e.g. Cheng & Rajapakse, IEEE TBME 56:741
    (2009)); :func:`touching_solidities` measures the pairs of a simulation to set it.

    Returns a new sequentially numbered int32 label image.
    """
    import heapq

    from skimage.segmentation import relabel_sequential

    lab = np.asarray(labels).astype(np.int32, copy=True)
    if lab.ndim != 2:
        raise ValueError(f"merge_convex takes a 2D label image, got shape {lab.shape}")
    boxes = {k: sl for k, sl in enumerate(ndimage.find_objects(lab), start=1) if sl is not None}
    neighbours: dict[int, set[int]] = {k: set() for k in boxes}
    for a, b in _touching_pairs(lab):
        neighbours[a].add(b)
        neighbours[b].add(a)

    def union_solidity(a: int, b: int) -> float:
        window = lab[_union_box(boxes[a], boxes[b])]
        return _solidity((window == a) | (window == b))

    # Heap entries carry the two objects' versions: an entry made before either was joined
    # to a third object describes a union that no longer exists and is skipped.
    version = dict.fromkeys(boxes, 0)
    heap: list[tuple[float, int, int, int, int]] = []

    def push(a: int, b: int) -> None:
        a, b = min(a, b), max(a, b)
        if (s := union_solidity(a, b)) >= min_solidity:
            heapq.heappush(heap, (-s, a, b, version[a], version[b]))

    for a, bs in neighbours.items():
        for b in bs:
            if a < b:
                push(a, b)
    while heap:
        _, a, b, va, vb = heapq.heappop(heap)
        if a not in boxes or b not in boxes or (va, vb) != (version[a], version[b]):
            continue
        box = _union_box(boxes[a], boxes[b])
        lab[box][lab[box] == b] = a
        boxes[a] = box
        del boxes[b]
        version[a] += 1
        neighbours[a] = (neighbours[a] | neighbours.pop(b)) - {a, b}
        for c in neighbours[a]:
            neighbours[c] = (neighbours[c] - {b}) | {a}
            push(a, c)
    return relabel_sequential(lab)[0].astype(np.int32)


def touching_solidities(labels: np.ndarray) -> np.ndarray:
    """Solidity of the union of every pair of touching instances of a 2D label image."""
    lab = np.asarray(labels)
    boxes = ndimage.find_objects(lab)
    out = []
    for a, b in sorted(_touching_pairs(lab)):
        box = _union_box(boxes[a - 1], boxes[b - 1])
        out.append(_solidity((lab[box] == a) | (lab[box] == b)))
    return np.asarray(out, dtype=np.float64)


def drop_faint(image: np.ndarray, labels: np.ndarray, min_contrast: float) -> np.ndarray:
    """Drop objects barely brighter than the background: an object is kept when its mean
    intensity exceeds the background's median by ``min_contrast`` × the typical object's
    excess. Removes false objects in dim debris, out-of-focus light and noise, which a model
    trained on simulations can take for nuclei on real images. The typical object is the
    area-weighted median (the median object mean over labelled pixels), so that many small
    false objects cannot outvote fewer, larger nuclei."""
    from skimage.segmentation import relabel_sequential

    n = int(labels.max())
    if min_contrast <= 0 or n == 0 or not (labels == 0).any():
        return labels
    means = np.asarray(ndimage.mean(image, labels, np.arange(1, n + 1)))
    background = float(np.median(image[labels == 0]))
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    order = np.argsort(means)
    half = np.searchsorted(np.cumsum(areas[order]), 0.5 * areas.sum())
    typical = float(means[order][min(half, n - 1)])
    faint = np.zeros(n + 1, bool)
    faint[1:] = means < background + min_contrast * (typical - background)
    out = np.where(faint[labels], 0, labels)
    return relabel_sequential(out)[0].astype(np.int32)


def estimate_radius(image: np.ndarray) -> float:
    """Median inscribed radius (pixels) of the bright blobs of an image: Otsu threshold of the
    smoothed image (its brightest 2 % clipped), then the largest border distance in each blob
    (robust to touching nuclei, which merge into one blob but keep their width)."""
    from skimage.filters import threshold_otsu

    x = ndimage.gaussian_filter(np.asarray(image, np.float32), 2.0)
    if float(x.max() - x.min()) <= 0:
        raise InputError("the image is flat: no nuclei to measure")
    # A few very bright nuclei (mitotic) would pull Otsu's threshold above the others: the
    # brightest 2 % of pixels are clipped first.
    clipped = np.minimum(x, np.percentile(x, 98))
    mask = ndimage.binary_opening(x > threshold_otsu(clipped), iterations=2)
    dist = ndimage.distance_transform_edt(mask)
    lab, n = ndimage.label(mask)
    if n == 0:
        raise InputError("no nuclei found to measure their size; give --diameter")
    # Per-blob maxima and areas in one pass each (ndimage.maximum sorts all pixels: 5× slower).
    peaks = np.zeros(n + 1)
    np.maximum.at(peaks, lab.ravel(), dist.ravel())
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    keep = peaks[1:][areas[1:] >= 20]
    if keep.size == 0:
        raise InputError("no nuclei found to measure their size; give --diameter")
    return float(np.median(keep))


# ------------------------------------------------------------------------------ the model
class Segmenter(Model):
    """Nuclei instance segmentation: ``fit`` on simulations (and optional pairs), ``predict``.

    Examples
    --------
    >>> model = Segmenter.load("nuclei-fluo")  # doctest: +SKIP
    >>> labels = model.predict(image)  # doctest: +SKIP
    """

    method = "segment"
    config_class = SegmenterConfig

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
            self.config = self.config.updated(typical_radius_px=_typical_radius(self.config))
        pairs = [self._at_model_scale(img, lab) for img, lab in pairs or []]
        for img, _lab in pairs:
            if min(img.shape) < tr.patch_size:
                raise InputError(
                    f"an image of {img.shape} pixels at the model's nucleus size is smaller than "
                    f"the {tr.patch_size}-pixel training patches"
                )
        train = NucleiBatches(self.config, tr.steps_per_epoch, pairs=pairs)
        val = NucleiBatches(self.config, tr.validation_batches, validation=True, pairs=pairs)
        result = self._train(
            work_dir=work_dir,
            resume=resume,
            quiet=quiet,
            datasets=(train, val),
            loss_fn=segmentation_loss,
        )
        self.metrics.update(
            {
                "val_loss": round(result.val_loss, 5),
                "steps": result.steps,
                "training_seconds": round(result.elapsed_s, 1),
            }
        )
        return self

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
    ) -> tuple[np.ndarray, np.ndarray]:
        """Foreground probability and normalized distance (Y, X) of an already scaled image.

        With a contact map (3-output networks) the distance is multiplied by the probability
        of not being at a contact, so seeds and watershed lines part touching nuclei there.

        The image is predicted tile by tile (``tile="auto"``: tiles as large as
        ``memory_mb`` allows; a number: that core edge; None: one window) with the network's
        full context, so the maps equal those of one pass and the labels drawn from them
        continue across tile borders. ``tta`` averages the maps of the image's eight
        rotations and mirror images (test-time augmentation: 8× the time, maps that depend
        less on the orientation of each nucleus).
        """
        compute = {"tile": tile, "levels": levels, "memory_mb": memory_mb, "device": device}
        with torch_threads(threads):
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
    ) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        x = np.ascontiguousarray(normalize_image(image, cfg.percentiles, levels)[None])
        dev = resolve_device(device)
        net = self.network.eval().to(dev)

        def run(window: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = net(torch.from_numpy(np.ascontiguousarray(window[None])).to(dev))[0]
            return torch.sigmoid(out).cpu().numpy()

        try:
            maps = self.windowed(
                run, x, tile=tile, memory_mb=memory_mb, out_channels=cfg.network.out_channels
            )
        finally:
            self.network.cpu()
        if maps.shape[0] == 3:
            # Contacts cut the distance map: seeds split there and watershed lines follow them.
            return maps[0], maps[1] * (1.0 - maps[2])
        return maps[0], maps[1]

    def scale_for(self, image: np.ndarray, diameter_px: float | None = None) -> float:
        """Zoom that gives the image's nuclei the model's trained size."""
        typical = self.config.typical_radius_px
        if typical is None:
            return 1.0
        radius = diameter_px / 2 if diameter_px else estimate_radius(image)
        return float(np.clip(typical / radius, 0.1, 4.0))

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
        zoom = scale if scale is not None else self.scale_for(img, diameter_px)
        work = ndimage.zoom(img, zoom, order=1) if abs(zoom - 1) > 0.05 else img
        fg, dist = self.predict_maps(work, tta=tta, levels=levels, **compute)
        if work is not img:
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
        return drop_faint(img, labels, cfg.min_contrast)

    def predict_stack(
        self,
        stack: np.ndarray,
        *,
        diameter_px: float | None = None,
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
        ``min_planes`` planes are dropped (a nucleus spans several planes).
        """
        from abbe.metrics.segmentation import _relabel

        vol = np.asarray(stack, dtype=np.float32)
        if vol.ndim != 3:
            raise InputError(f"3D segmentation takes a stack (Z, Y, X), got shape {vol.shape}")
        zoom = self.scale_for(vol.max(axis=0), diameter_px)
        # One intensity scale for the whole stack: a plane above or below the nuclei, normalized
        # on its own, would stretch its noise and out-of-focus light into false nuclei.
        levels = tuple(float(v) for v in np.percentile(vol, self.config.percentiles))
        planes = [
            self.predict(plane, scale=zoom, tta=tta, levels=levels, **compute) for plane in vol
        ]
        out = stitch_planes(planes, min_overlap)
        if vol.shape[0] > min_planes:
            out = _drop_thin(out, min_planes)
        return _relabel(_trim_axially(vol, out)).astype(np.int32)


def _dihedral(a: np.ndarray, k: int, *, inverse: bool = False) -> np.ndarray:
    """The k-th of the 8 rotations/mirror images of a (Y, X) array (k = 0: itself), or its
    inverse: a quarter turn k mod 4 times, mirrored left–right for k ≥ 4."""
    if not inverse:
        out = np.rot90(a, k % 4)
        return np.ascontiguousarray(out[:, ::-1] if k >= 4 else out)
    back = a[:, ::-1] if k >= 4 else a
    return np.ascontiguousarray(np.rot90(back, -(k % 4)))


def _resize(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    factors = [s / n for s, n in zip(shape, a.shape, strict=True)]
    out = ndimage.zoom(a, factors, order=1)
    return out[: shape[0], : shape[1]]


def _typical_radius(cfg: SegmenterConfig, n: int = 16) -> float:
    """estimate_radius over simulated training-like images (the model's size reference)."""
    radii = [
        estimate_radius(nuclei_image((256, 256), cfg.simulation, seed=10_000 + k).image)
        for k in range(n)
    ]
    return float(np.median(radii))


def _overlap_coefficient(
    a: np.ndarray, b: np.ndarray, a_ids: np.ndarray, b_ids: np.ndarray
) -> np.ndarray:
    """|A ∩ B| / min(|A|, |B|) for every object of ``a`` (rows, ``a_ids``) and of ``b``."""
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    counts = np.bincount(a.ravel().astype(np.int64) * nb + b.ravel(), minlength=na * nb)
    counts = counts.reshape(na, nb)
    area_a, area_b = counts.sum(axis=1), counts.sum(axis=0)
    inter = counts[np.ix_(a_ids, b_ids)]
    return inter / np.maximum(np.minimum(area_a[a_ids][:, None], area_b[b_ids][None]), 1)


def stitch_planes(planes: list[np.ndarray], min_overlap: float = 0.5) -> np.ndarray:
    """Join per-plane labels into 3D labels: an object continues the object of the previous
    plane it overlaps by ≥ ``min_overlap`` of the smaller of the two (optimal one-to-one);
    the others start new objects."""
    from abbe.metrics.segmentation import match

    out = np.zeros((len(planes), *planes[0].shape), np.int32)
    next_id = 1
    previous = np.zeros(planes[0].shape, np.int32)
    for z, labels in enumerate(planes):
        ids = np.unique(labels[labels > 0])
        prev_ids = np.unique(previous[previous > 0])
        mapping: dict[int, int] = {}
        if ids.size and prev_ids.size:
            overlap = _overlap_coefficient(previous, labels, prev_ids, ids)
            rows, cols = match(overlap, min_overlap)
            mapping = {int(ids[c]): int(prev_ids[r]) for r, c in zip(rows, cols, strict=True)}
        lut = np.zeros(int(labels.max()) + 1, np.int32)
        for k in ids:
            if int(k) not in mapping:
                mapping[int(k)] = next_id
                next_id += 1
            lut[int(k)] = mapping[int(k)]
        out[z] = lut[labels]
        previous = out[z]
    return out


def _drop_thin(labels: np.ndarray, min_planes: int) -> np.ndarray:
    """Remove objects present in fewer than ``min_planes`` planes."""
    n = int(labels.max()) + 1
    planes = np.zeros(n, np.int64)
    for z in range(labels.shape[0]):
        planes[np.unique(labels[z])] += 1
    thin = np.flatnonzero((planes < min_planes) & (np.arange(n) > 0))
    return np.where(np.isin(labels, thin), 0, labels)


def _trim_axially(vol: np.ndarray, labels: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Remove each object's planes whose mean intensity inside it is below ``level`` of the way
    from the background to its brightest plane: out-of-focus light above and below a nucleus
    looks like a (dimmer) nucleus in a single plane, so plane-wise masks run long in Z."""
    bg = float(np.percentile(vol, 5))
    n = int(labels.max()) + 1
    out = labels.copy()
    means = np.zeros((vol.shape[0], n))
    for z in range(vol.shape[0]):
        counts = np.bincount(labels[z].ravel(), minlength=n)
        sums = np.bincount(labels[z].ravel(), weights=vol[z].ravel(), minlength=n)
        means[z] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    with np.errstate(all="ignore"):
        peak = np.nanmax(means, axis=0)
        keep = means >= bg + level * (peak - bg)
    for z in range(vol.shape[0]):
        drop = ~keep[z] & ~np.isnan(means[z])
        drop[0] = False
        out[z][drop[labels[z]]] = 0
    return out
