"""Fluorescent specimens drawn on a fine (sub-pixel) grid in physical units.

Each generator returns a :class:`Specimen`: a fluorophore density (relative photons per fine pixel)
and, for objects with an identity such as nuclei, an instance label image. Sizes are in nm, so the
same seed draws the same specimen at any pixel size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from abbe.errors import InputError

Structure = Literal["filaments", "puncta", "rings", "nuclei"]
STRUCTURES: tuple[str, ...] = ("filaments", "puncta", "rings", "nuclei")


@dataclass(frozen=True, eq=False)
class Specimen:
    """A fluorophore density on a grid.

    Attributes
    ----------
    density : (Y, X) float32, relative photons per pixel of this grid.
    pixel_size_nm : pixel size of the grid.
    labels : (Y, X) int32 instance labels (0 = background), or None.
    """

    density: np.ndarray
    pixel_size_nm: float
    labels: np.ndarray | None = None


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _area_um2(shape: tuple[int, int], pixel_size_nm: float) -> float:
    return shape[0] * shape[1] * (pixel_size_nm / 1e3) ** 2


def _splat(density: np.ndarray, y: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
    """Add weights ``w`` at fractional pixel positions (y, x) by bilinear splatting, in place."""
    h, wd = density.shape
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = y - y0, x - x0
    flat = density.reshape(-1)
    for dy, dx, wt in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < wd)
        flat += np.bincount(yy[ok] * wd + xx[ok], weights=(w * wt)[ok], minlength=flat.size)


def filaments(
    shape: tuple[int, int],
    *,
    pixel_size_nm: float,
    n: int | None = None,
    length_nm: tuple[float, float] = (8_000, 40_000),
    persistence_nm: float = 12_000,
    brightness: tuple[float, float] = (0.6, 1.4),
    seed: int | np.random.Generator | None = 0,
) -> Specimen:
    """Microtubule-like filaments: smooth random curves (a worm-like chain) of sub-pixel width.

    Each filament starts at a uniform random point with a uniform direction; its tangent angle
    diffuses with variance ``ds / persistence_nm`` per step ``ds``, which gives the exponential
    decay of tangent correlation of a semi-flexible polymer in 2D.

    Parameters
    ----------
    shape : (Y, X) of the fine grid.
    pixel_size_nm : pixel size of the fine grid.
    n : number of filaments; default one per 40 µm² of field (at least 3).
    length_nm : range of contour lengths (uniform).
    persistence_nm : persistence length of the curves.
    brightness : range of per-filament brightness (labelling density), uniform.
    seed : random seed or generator.

    Returns
    -------
    Specimen whose density integrates to about one unit per nm of filament.
    """
    rng = _rng(seed)
    n = n if n is not None else max(3, round(_area_um2(shape, pixel_size_nm) / 40))
    density = np.zeros(shape, dtype=np.float64)
    ds = pixel_size_nm / 2  # two samples per pixel keep the bilinear line smooth
    for _ in range(n):
        steps = max(2, int(rng.uniform(*length_nm) / ds))
        theta = rng.uniform(0, 2 * np.pi) + np.cumsum(
            rng.normal(0, np.sqrt(ds / persistence_nm), steps)
        )
        y = rng.uniform(0, shape[0]) + np.cumsum(np.sin(theta)) * ds / pixel_size_nm
        x = rng.uniform(0, shape[1]) + np.cumsum(np.cos(theta)) * ds / pixel_size_nm
        # Centre the curve on its start point so filaments cross the field rather than leave it.
        y -= (y.max() + y.min()) / 2 - y[0]
        x -= (x.max() + x.min()) / 2 - x[0]
        _splat(density, y, x, np.full(steps, ds * rng.uniform(*brightness)))
    return Specimen(density.astype(np.float32), pixel_size_nm)


def puncta(
    shape: tuple[int, int],
    *,
    pixel_size_nm: float,
    density_per_um2: float = 0.3,
    radius_nm: tuple[float, float] = (20, 100),
    brightness_log_sd: float = 0.25,
    seed: int | np.random.Generator | None = 0,
) -> Specimen:
    """Puncta and vesicles: round spots of random radius and log-normal brightness.

    Parameters
    ----------
    density_per_um2 : mean number of puncta per µm² (Poisson).
    radius_nm : range of radii (uniform); spots are Gaussian with σ = radius/2.
    brightness_log_sd : SD of the log of the per-spot brightness (median 1).
    """
    rng = _rng(seed)
    count = rng.poisson(density_per_um2 * _area_um2(shape, pixel_size_nm))
    density = np.zeros(shape, dtype=np.float64)
    yy, xx = rng.uniform(0, shape[0], count), rng.uniform(0, shape[1], count)
    sigma_px = rng.uniform(*radius_nm, count) / 2 / pixel_size_nm
    amp = np.exp(rng.normal(0, brightness_log_sd, count))
    # Spots narrower than a pixel are points; wider ones are blurred individually.
    point = sigma_px < 0.5
    _splat(density, yy[point], xx[point], amp[point])
    for y, x, s, a in zip(yy[~point], xx[~point], sigma_px[~point], amp[~point], strict=True):
        r = int(np.ceil(4 * s))
        y0, x0 = int(y) - r, int(x) - r
        gy = np.arange(y0, y0 + 2 * r + 1) + 0.5 - y
        gx = np.arange(x0, x0 + 2 * r + 1) + 0.5 - x
        g = np.outer(np.exp(-(gy**2) / (2 * s**2)), np.exp(-(gx**2) / (2 * s**2)))
        _add_window(density, y0, x0, a * g / g.sum())
    return Specimen(density.astype(np.float32), pixel_size_nm)


def rings(
    shape: tuple[int, int],
    *,
    pixel_size_nm: float,
    density_per_um2: float = 0.5,
    radius_nm: tuple[float, float] = (40, 90),
    brightness_log_sd: float = 0.25,
    seed: int | np.random.Generator | None = 0,
) -> Specimen:
    """Clathrin-coated-pit-like rings: hollow circles (the coat seen in projection), the
    structure whose hole a 2× super-resolution should open (BioSR's CCPs, ~80–180 nm across).

    Parameters
    ----------
    density_per_um2 : mean number of rings per µm² (Poisson).
    radius_nm : range of ring radii (uniform).
    brightness_log_sd : SD of the log of the per-ring brightness (median 1).
    """
    rng = _rng(seed)
    count = rng.poisson(density_per_um2 * _area_um2(shape, pixel_size_nm))
    density = np.zeros(shape, dtype=np.float64)
    for _ in range(count):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r_px = rng.uniform(*radius_nm) / pixel_size_nm
        n = max(8, int(4 * np.pi * r_px))  # two samples per fine pixel of circumference
        t = rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi, n, endpoint=False)
        amp = np.exp(rng.normal(0, brightness_log_sd))
        _splat(density, cy + r_px * np.sin(t), cx + r_px * np.cos(t), np.full(n, amp / n))
    return Specimen(density.astype(np.float32), pixel_size_nm)


def _add_window(
    canvas: np.ndarray,
    y0: int,
    x0: int,
    patch: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    label: int = 0,
    occlude: bool = False,
) -> None:
    """Add ``patch`` to ``canvas`` at (y0, x0), clipped; where ``mask``, write ``label``.
    With ``occlude`` (needs ``labels``) the patch is left out where ``labels`` already holds an
    object, and meets the anti-aliased rim of that object by the brighter of the two, not
    their sum: it lies beside the object, not on top."""
    h, w = canvas.shape
    ys, xs = max(0, -y0), max(0, -x0)
    ye, xe = min(patch.shape[0], h - y0), min(patch.shape[1], w - x0)
    if ye <= ys or xe <= xs:
        return
    region = (slice(y0 + ys, y0 + ye), slice(x0 + xs, x0 + xe))
    part = patch[ys:ye, xs:xe]
    free = np.ones(part.shape, bool)
    if occlude and labels is not None:
        free = labels[region] == 0
        canvas[region] = np.where(free, np.maximum(canvas[region], part), canvas[region])
    else:
        canvas[region] += part
    if labels is not None and mask is not None:
        labels[region][mask[ys:ye, xs:xe] & free] = label


def nuclei(
    shape: tuple[int, int],
    *,
    pixel_size_nm: float,
    radius_nm: tuple[float, float] = (2_500, 5_000),
    coverage: float = 0.3,
    elongation: tuple[float, float] = (0.65, 1.0),
    roughness: float = 0.04,
    texture: float = 0.3,
    brightness: tuple[float, float] = (0.5, 1.0),
    max_overlap: float = 0.15,
    dome: float = 0.0,
    pairs: float = 0.0,
    contact_gap: tuple[float, float] = (-0.15, 0.1),
    seed: int | np.random.Generator | None = 0,
) -> Specimen:
    """Cell nuclei: textured irregular ellipses with instance labels, touching, rarely overlapping.

    Parameters
    ----------
    radius_nm : range of the long semi-axis (uniform).
    coverage : target fraction of the field covered by nuclei.
    elongation : range of short/long axis ratio.
    roughness : SD of the relative amplitude of the boundary's low-order Fourier modes (2–5).
    texture : relative contrast of chromatin texture inside each nucleus.
    brightness : range of per-nucleus brightness (DNA content, staining).
    max_overlap : a new nucleus may overlap earlier ones by at most this fraction of its radius.
    dome : 0 gives flat nuclei (a thin optical section); 1 makes the intensity follow the
        thickness of an ellipsoid (widefield collects the whole depth), dimmer toward the edge.
    pairs : probability that a nucleus gets a sister pressed against it: daughter nuclei after
        division, of nearly the same size, shape, orientation and brightness, in contact on a
        random side. They do not overlap as nuclei on top of each other would: the sister is
        flattened where it meets the first (its light and label are left out there), so the
        pair shows no bright or dark seam, only the notches of two outlines.
    contact_gap : range of the sisters' gap along the line joining their centres, relative to
        the smaller short semi-axis (negative: pressed together, the sister flattened).
    """
    rng = _rng(seed)
    h, w = shape
    density = np.zeros(shape, dtype=np.float64)
    labels = np.zeros(shape, dtype=np.int32)
    target = coverage * h * w
    placed: list[tuple[float, float, float]] = []
    area, label, attempts = 0.0, 0, 0
    while area < target and attempts < 2000:
        attempts += 1
        a = rng.uniform(*radius_nm) / pixel_size_nm
        b = a * rng.uniform(*elongation)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        if any(np.hypot(cy - py, cx - px) < (1 - max_overlap) * (b + pr) for py, px, pr in placed):
            continue
        label += 1
        angle = rng.uniform(0, np.pi)
        patch, inside = _nucleus_patch(a, b, cy, cx, roughness, texture, rng, dome, angle)
        y0, x0 = int(cy) - patch.shape[0] // 2, int(cx) - patch.shape[1] // 2
        bright = rng.uniform(*brightness)
        # Later nuclei lie on top: their label wins where they overlap.
        _add_window(density, y0, x0, patch * bright, labels=labels, mask=inside >= 0.5, label=label)
        placed.append((cy, cx, b))
        area += np.pi * a * b
        if pairs > 0 and rng.random() < pairs:
            sister = _sister((cy, cx, a, b, angle), contact_gap, rng)
            sy, sx, sa, sb, s_angle = sister
            # The sister must keep clear of every nucleus but the one it is pressed against.
            if not any(
                np.hypot(sy - py, sx - px) < (1 - max_overlap) * (sb + pr)
                for py, px, pr in placed[:-1]
            ):
                label += 1
                patch, inside = _nucleus_patch(
                    sa, sb, sy, sx, roughness, texture, rng, dome, s_angle
                )
                y0, x0 = int(sy) - patch.shape[0] // 2, int(sx) - patch.shape[1] // 2
                _add_window(
                    density,
                    y0,
                    x0,
                    patch * bright * rng.uniform(0.85, 1.15),
                    labels=labels,
                    mask=inside >= 0.5,
                    label=label,
                    occlude=True,
                )
                placed.append((sy, sx, sb))
                area += np.pi * sa * sb
    return Specimen(density.astype(np.float32), pixel_size_nm, _relabel(labels))


def _sister(
    first: tuple[float, float, float, float, float],
    gap: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[float, float, float, float, float]:
    """(cy, cx, a, b, angle) of a daughter nucleus in contact with ``first`` = (cy, cx, a, b,
    angle): size within ±15 %, the same elongation within ±10 %, the same orientation within
    ~15°, on a random side, its centre at the sum of the two outlines' radii along the line
    joining the centres plus ``gap`` × the smaller short semi-axis."""
    cy, cx, a, b, angle = first
    a2 = a * rng.uniform(0.85, 1.15)
    b2 = min(a2, a2 * (b / a) * rng.uniform(0.9, 1.1))
    angle2 = angle + rng.normal(0.0, 0.25)
    phi = rng.uniform(0, 2 * np.pi)

    def radius(a_: float, b_: float, t: float) -> float:  # ellipse outline along direction t
        return a_ * b_ / float(np.hypot(b_ * np.cos(t), a_ * np.sin(t)))

    d = radius(a, b, phi - angle) + radius(a2, b2, phi - angle2)
    d += rng.uniform(*gap) * min(b, b2)
    return cy + d * np.sin(phi), cx + d * np.cos(phi), a2, b2, angle2


def _nucleus_patch(
    a, b, cy, cx, roughness, texture, rng, dome: float = 0.0, angle: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """An anti-aliased, textured nucleus on a square patch centred at the sub-pixel centre,
    its long axis at ``angle`` (radians; drawn when None).

    Returns the intensity patch and the (anti-aliased) fraction of each pixel inside the shape.
    """
    r = int(np.ceil(a * (1 + 4 * roughness))) + 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    yy -= cy - int(cy)
    xx -= cx - int(cx)
    if angle is None:
        angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    phi = np.arctan2(v, u)
    rho = np.hypot(u, v)
    edge = a * b / np.hypot(b * np.cos(phi), a * np.sin(phi))
    for k in range(2, 6):
        edge = edge * (1 + roughness * rng.normal() * np.cos(k * phi + rng.uniform(0, 2 * np.pi)))
    inside = np.clip(edge - rho + 0.5, 0, 1)  # one-pixel anti-aliased boundary
    thickness = np.sqrt(np.clip(1 - (rho / edge) ** 2, 0, 1))  # of an ellipsoid of this outline
    profile = inside * ((1 - dome) + dome * thickness)
    grain = ndimage.gaussian_filter(rng.standard_normal(yy.shape), sigma=max(1.0, a / 8))
    grain /= grain.std() + 1e-12
    return profile * np.clip(1 + texture * grain, 0.2, None), inside


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Number labels 1..N in order of appearance, dropping those fully covered by later ones."""
    present = np.unique(labels)
    present = present[present > 0]
    lut = np.zeros(labels.max() + 1, dtype=np.int32)
    lut[present] = np.arange(1, present.size + 1, dtype=np.int32)
    return lut[labels]


def make(
    structure: str,
    shape: tuple[int, int],
    *,
    pixel_size_nm: float,
    seed: int | np.random.Generator | None = 0,
    **kwargs,
) -> Specimen:
    """Draw a specimen by name: ``filaments``, ``puncta``, ``rings`` or ``nuclei``."""
    generators = {"filaments": filaments, "puncta": puncta, "rings": rings, "nuclei": nuclei}
    if structure not in generators:
        raise InputError(f"unknown structure {structure!r}; choose one of {', '.join(STRUCTURES)}")
    return generators[structure](shape, pixel_size_nm=pixel_size_nm, seed=seed, **kwargs)
