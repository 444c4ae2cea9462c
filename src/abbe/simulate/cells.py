"""Nuclei images with exact instance labels, for training and testing segmentation.

Sizes are in pixels here (a segmentation network sees pixels; :mod:`abbe.segment` rescales a
user's image so that its nuclei have the size the model was trained on). Every image draws its
own conditions from the given ranges: nucleus size, crowding (touching and slightly overlapping
nuclei), shape, chromatin texture, per-nucleus brightness, blur, out-of-focus haze, uneven
illumination, background and camera noise (Poisson shot noise and Gaussian read noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from abbe.simulate.specimens import nuclei


class NucleiImageConfig(BaseModel):
    """Ranges each simulated nuclei image draws its conditions from (uniform)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    radius_px: tuple[float, float] = Field((9.0, 22.0), description="Long semi-axis, pixels.")
    coverage: tuple[float, float] = (0.1, 0.5)
    elongation: tuple[float, float] = (0.55, 1.0)
    roughness: tuple[float, float] = (0.0, 0.08)
    texture: tuple[float, float] = (0.05, 0.5)
    brightness: tuple[float, float] = Field(
        (0.25, 1.0), description="Per-nucleus brightness relative to the brightest."
    )
    max_overlap: float = Field(0.2, ge=0, lt=1)
    pairs: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Probability that a nucleus has a sister pressed against it (daughter "
        "nuclei: same size, shape, orientation and brightness within 15 %, no seam).",
    )
    contact_gap: tuple[float, float] = Field(
        (-0.15, 0.1),
        description="Gap between sisters relative to the short semi-axis (negative: pressed).",
    )
    dome: tuple[float, float] = Field(
        (0.0, 1.0),
        description="0: flat nuclei (optical section); 1: intensity follows the ellipsoid's "
        "thickness (widefield), dimmer toward the edge.",
    )
    bright_probability: float = Field(
        0.3, ge=0, le=1, description="Fraction of images holding very bright nuclei."
    )
    bright_coverage: tuple[float, float] = Field(
        (0.005, 0.03),
        description="Field fraction of those nuclei (mitotic, condensed DNA) where present.",
    )
    bright_factor: tuple[float, float] = Field(
        (2.0, 12.0), description="Brightness of those nuclei relative to the others' brightest."
    )
    bright_size: tuple[float, float] = Field(
        (0.35, 1.0), description="Long semi-axis of those nuclei relative to the image's scale."
    )
    bright_glow: tuple[float, float] = Field(
        (0.0, 0.6),
        description="Fraction of those nuclei's light that reaches the focal plane out of "
        "focus, as a glow around them (rounded, thick mitotic cells in widefield).",
    )
    bright_glow_width: tuple[float, float] = Field(
        (0.3, 1.0), description="Gaussian σ of that glow relative to the image's nucleus scale."
    )
    saturation_probability: float = Field(
        0.3, ge=0, le=1, description="Fraction of images clipped by the camera's full scale."
    )
    saturation_level: tuple[float, float] = Field(
        (1.5, 6.0), description="Where clipped: the clip level relative to the peak photons."
    )
    blur_px: tuple[float, float] = Field((0.5, 2.5), description="Gaussian PSF σ, pixels.")
    haze: tuple[float, float] = Field(
        (0.0, 0.3), description="Out-of-focus light: a wide blur of the nuclei, relative."
    )
    illumination: tuple[float, float] = Field(
        (0.0, 0.4), description="Relative amplitude of smooth illumination unevenness."
    )
    peak_photons: tuple[float, float] = (15.0, 1000.0)
    background: tuple[float, float] = Field((0.0, 0.3), description="Relative to the peak.")
    read_noise: tuple[float, float] = (0.0, 3.0)
    label_level: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Labels keep the pixels of each nucleus where its blurred noiseless image "
        "reaches this fraction of its core's median (0: the whole object, to where its "
        "density ends). Annotators draw the edge where a nucleus visibly ends: on the DSB2018 "
        "sample the annotation's last pixels lie at 61 % and the first pixels outside at 49 % "
        "of the core's level, whereas whole-object labels end at 49 % / 29 %.",
    )


@dataclass(frozen=True)
class NucleiImage:
    """A simulated image (photons, float32) and its instance labels (int32, 0 = background)."""

    image: np.ndarray
    labels: np.ndarray


def nuclei_image(
    shape: tuple[int, int], config: NucleiImageConfig | None = None, *, seed: int = 0
) -> NucleiImage:
    """Draw one nuclei image and its labels.

    Examples
    --------
    >>> sim = nuclei_image((128, 128), seed=1)
    >>> sim.image.shape, int(sim.labels.max()) > 0
    ((128, 128), True)
    """
    cfg = config or NucleiImageConfig()
    rng = np.random.default_rng(seed)

    def draw(r: tuple[float, float]) -> float:
        return float(rng.uniform(*r))

    r_lo, r_hi = cfg.radius_px
    r_mid = draw((r_lo, r_hi))  # sizes in one image vary around an image-wide scale
    radius = (max(r_lo, 0.75 * r_mid), min(r_hi, 1.3 * r_mid) + 1e-6)
    spec = nuclei(
        shape,
        pixel_size_nm=1.0,
        radius_nm=radius,
        coverage=draw(cfg.coverage),
        elongation=cfg.elongation,
        roughness=draw(cfg.roughness),
        texture=draw(cfg.texture),
        brightness=cfg.brightness,
        max_overlap=cfg.max_overlap,
        dome=draw(cfg.dome),
        pairs=cfg.pairs,
        contact_gap=cfg.contact_gap,
        seed=rng,
    )
    obj = spec.density.astype(np.float64) / max(float(spec.density.max()), 1e-12)
    sigma = draw(cfg.blur_px)
    light = _illumination(shape, draw(cfg.illumination), rng)
    # Photons and background are relative to the ordinary nuclei; bright ones exceed them.
    scale = max(float((ndimage.gaussian_filter(obj, sigma, mode="reflect") * light).max()), 1e-12)
    bright, labels = _add_bright(spec.labels.astype(np.int32), cfg, r_mid, rng)
    in_focus = ndimage.gaussian_filter(bright, sigma, mode="reflect")
    img = ndimage.gaussian_filter(obj, sigma, mode="reflect") + in_focus
    glow, glow_width = draw(cfg.bright_glow), draw(cfg.bright_glow_width) * r_mid
    if glow > 0 and bright.any():
        # A thick bright nucleus sends part of its light from planes out of focus: that part
        # is spread wide around it instead of imaged sharply.
        wide = ndimage.gaussian_filter(bright, glow_width, mode="reflect")
        img = img + glow * (wide - in_focus)
    if cfg.label_level > 0:
        labels = _labels_at_level(labels, ndimage.gaussian_filter(obj, sigma) + in_focus, cfg)
    obj = obj + bright
    haze = draw(cfg.haze)
    if haze > 0:
        img = img + haze * ndimage.gaussian_filter(obj, 3 * r_mid, mode="reflect")
    img = img * light / scale
    peak = np.exp(draw((np.log(cfg.peak_photons[0]), np.log(cfg.peak_photons[1]))))
    expected = peak * (img + draw(cfg.background))
    noisy = rng.poisson(expected).astype(np.float64)
    noisy += rng.normal(0.0, draw(cfg.read_noise), size=shape)
    if rng.random() < cfg.saturation_probability:
        noisy = np.minimum(noisy, peak * draw(cfg.saturation_level))
    return NucleiImage(noisy.astype(np.float32), labels)


def _labels_at_level(labels: np.ndarray, blurred: np.ndarray, cfg: NucleiImageConfig) -> np.ndarray:
    """Labels trimmed to where each nucleus' blurred image reaches ``cfg.label_level`` of its
    core (the median over its pixels at least 3 px inside); nuclei too small for a core use
    their brightest pixel's level. Only pixels of the nucleus' own label are kept or dropped,
    and its largest remaining piece is kept, so a nucleus never grows or splits."""
    out = labels.copy()
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mine = labels[sl] == k
        core = ndimage.binary_erosion(mine, iterations=3)
        values = blurred[sl]
        level = float(np.median(values[core])) if core.any() else float(values[mine].max())
        keep = mine & (values >= cfg.label_level * level)
        pieces, n = ndimage.label(keep)
        if n > 1:
            keep = pieces == 1 + int(np.argmax(np.bincount(pieces.ravel())[1:]))
        box = out[sl]
        box[mine & ~keep] = 0
    return out


def _add_bright(
    labels: np.ndarray,
    cfg: NucleiImageConfig,
    r_mid: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Bright nuclei where the field is empty (they would saturate a percentile normalization
    tuned on the others, so a model must see them): their density, and the labels with them
    added."""
    present = rng.random() < cfg.bright_probability
    coverage = float(rng.uniform(*cfg.bright_coverage))
    if not present or coverage <= 0:
        return np.zeros(labels.shape), labels
    lo, hi = cfg.bright_size
    spec = nuclei(
        labels.shape,
        pixel_size_nm=1.0,
        radius_nm=(lo * r_mid, hi * r_mid + 1e-6),
        coverage=coverage,
        elongation=(0.5, 1.0),
        texture=0.2,
        brightness=cfg.bright_factor,
        max_overlap=0.0,
        seed=rng,
    )
    free = (spec.labels > 0) & (labels == 0)
    ids = np.unique(spec.labels[free])
    keep = np.isin(spec.labels, ids) & ~np.isin(spec.labels, np.unique(spec.labels[labels > 0]))
    new = np.where(keep, spec.labels, 0)
    _, inverse = np.unique(new, return_inverse=True)
    new = inverse.reshape(new.shape)  # 0 stays 0 (it is present), objects 1…k
    labels = np.where(new > 0, new + labels.max(), labels).astype(np.int32)
    return np.where(keep, spec.density, 0.0), labels


def _illumination(shape: tuple[int, int], amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth positive field 1 ± ``amplitude`` (vignetting-like gradients and bumps)."""
    if amplitude <= 0:
        return np.ones(shape)
    coarse = rng.standard_normal((4, 4))
    field = ndimage.zoom(coarse, (shape[0] / 4, shape[1] / 4), order=3, mode="reflect")
    field = field[: shape[0], : shape[1]]
    field = (field - field.mean()) / (field.std() + 1e-12)
    return np.clip(1 + amplitude * field / 2, 0.2, None)


#: Nucleus shape classes for classification: interphase (round), elongated (migrating or
#: squeezed cells), fragmented (apoptotic bodies, micronuclei).
NUCLEUS_CLASSES: tuple[str, ...] = ("round", "elongated", "fragmented")


@dataclass(frozen=True)
class NucleusField:
    """One nucleus of a known class in a small field, with its mask (bool) and neighbours."""

    image: np.ndarray
    mask: np.ndarray
    kind: str


def nucleus_field(
    kind: str, *, size: int = 96, seed: int | np.random.Generator = 0
) -> NucleusField:
    """Draw one nucleus of shape class ``kind`` (see :data:`NUCLEUS_CLASSES`) near the centre
    of a ``size``² field, sometimes with parts of neighbouring nuclei at the border, blurred,
    with Poisson and read noise. Its size, brightness, texture and the noise vary.
    """
    from abbe.errors import InputError
    from abbe.simulate.specimens import _add_window, _nucleus_patch

    if kind not in NUCLEUS_CLASSES:
        raise InputError(f"unknown nucleus class {kind!r}; choose {', '.join(NUCLEUS_CLASSES)}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    obj = np.zeros((size, size))
    mask = np.zeros((size, size), bool)
    c = size / 2 + rng.uniform(-3, 3, 2)
    texture = rng.uniform(0.05, 0.3)

    def put(a: float, b: float, cy: float, cx: float, bright: float, target: np.ndarray | None):
        patch, inside = _nucleus_patch(a, b, cy, cx, rng.uniform(0, 0.05), texture, rng)
        y0, x0 = int(cy) - patch.shape[0] // 2, int(cx) - patch.shape[1] // 2
        labels = None if target is None else np.zeros((size, size), np.int32)
        _add_window(obj, y0, x0, patch * bright, labels=labels, mask=inside >= 0.5, label=1)
        if target is not None and labels is not None:
            target |= labels > 0

    if kind == "round":
        a = rng.uniform(9, 16)
        put(a, a * rng.uniform(0.8, 1.0), c[0], c[1], 1.0, mask)
    elif kind == "elongated":
        a = rng.uniform(14, 24)
        put(a, a * rng.uniform(0.3, 0.5), c[0], c[1], 1.0, mask)
    else:  # fragmented: several small bright bodies clustered where one nucleus was
        spread = rng.uniform(8, 13)
        for _ in range(rng.integers(3, 8)):
            r = rng.uniform(2.5, 5.0)
            off = rng.normal(0, spread / 2, 2)
            put(
                r,
                r * rng.uniform(0.7, 1.0),
                c[0] + off[0],
                c[1] + off[1],
                rng.uniform(1, 1.8),
                mask,
            )
    # Neighbours cut by the field's border (their shape must not decide the class).
    for _ in range(rng.integers(0, 3)):
        side = rng.integers(4)
        t = rng.uniform(0, size)
        cy, cx = [(t, -6), (t, size + 6), (-6, t), (size + 6, t)][side]
        a = rng.uniform(10, 18)
        put(a, a * rng.uniform(0.5, 1.0), cy, cx, rng.uniform(0.4, 1.0), None)
    img = ndimage.gaussian_filter(obj, rng.uniform(0.7, 2.0))
    img = img / max(float(img.max()), 1e-12)
    peak = np.exp(rng.uniform(np.log(30), np.log(1000)))
    expected = peak * (img + rng.uniform(0.0, 0.2))
    noisy = rng.poisson(expected) + rng.normal(0, rng.uniform(0, 2), img.shape)
    return NucleusField(noisy.astype(np.float32), mask, kind)


@dataclass(frozen=True)
class NucleiStack:
    """A simulated 3D stack (Z, Y, X) of nuclei (photons, float32) and its 3D labels."""

    image: np.ndarray
    labels: np.ndarray


def nuclei_stack(
    shape: tuple[int, int, int] = (24, 128, 128),
    *,
    radius_px: tuple[float, float] = (10.0, 16.0),
    radius_z: tuple[float, float] = (3.0, 6.0),
    count: int = 12,
    blur_px: tuple[float, float] = (1.2, 1.5),
    peak_photons: float = 200.0,
    background: float = 0.05,
    seed: int = 0,
) -> NucleiStack:
    """Ellipsoidal, textured nuclei in a stack with exact 3D labels: non-overlapping, at random
    positions, blurred by an anisotropic Gaussian (σ in Y/X, then Z), Poisson noise.

    Parameters
    ----------
    shape : (Z, Y, X).
    radius_px : range of the lateral semi-axes; radius_z : of the axial one (planes).
    count : nuclei to place (fewer if they do not fit).
    blur_px : (lateral, axial) σ of the blur.
    """
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    zz, yy, xx = np.mgrid[:nz, :ny, :nx].astype(np.float32)
    labels = np.zeros(shape, np.int32)
    obj = np.zeros(shape, np.float32)
    placed = 0
    for _ in range(count * 20):
        if placed == count:
            break
        a = rng.uniform(*radius_px)
        b = a * rng.uniform(0.7, 1.0)
        c = rng.uniform(*radius_z)
        cz, cy, cx = rng.uniform(c, nz - c), rng.uniform(a, ny - a), rng.uniform(a, nx - a)
        t = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        inside = (u / a) ** 2 + (v / b) ** 2 + ((zz - cz) / c) ** 2 <= 1
        # Keep a gap so that nuclei touch at most (they are separate cells).
        if np.any(labels[ndimage.binary_dilation(inside, iterations=2)]):
            continue
        placed += 1
        labels[inside] = placed
        obj[inside] = rng.uniform(0.5, 1.0)
    grain = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    obj = obj * np.clip(1 + 0.2 * grain / (grain.std() + 1e-12), 0.2, None)
    img = ndimage.gaussian_filter(obj, (blur_px[1], blur_px[0], blur_px[0]))
    expected = peak_photons * (img / max(float(img.max()), 1e-12) + background)
    return NucleiStack(rng.poisson(expected).astype(np.float32), labels)
