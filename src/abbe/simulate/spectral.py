"""Colour with known truth: spectroscopic SMLM (sSMLM) frames and multicolour widefield images.

sSMLM (Zhang et al., Nat Methods 12:935 (2015)): a grating or prism sends part of each blink's
light to a second region of the same camera, dispersed along x, so every localization also has a
spectrum. Here the frame holds two regions side by side: the spatial image in columns
``[0, region_x0)`` and the spectral image beyond. An emitter at spatial column position ``x``
(pixels, continuous) sends wavelength ``λ`` to column position
``x + offset_x_px + (λ − reference_nm) / dispersion_nm_per_px`` and row ``y + offset_y_px``;
an emission filter passes ``range_nm``. The spectrum is blurred by the PSF in both directions
(a pixel-integrated Gaussian of the same σ; Gaire et al., Biomed Opt Express 11:2705 (2020)
simulate it the same way).

Multicolour widefield: label images (one per dye) seen through detection channels that each also
collect some of the other dyes' light, ``observed = M · labels`` with a bleed-through matrix
``M[channel, label]`` (Zimmermann, Adv Biochem Eng Biotechnol 95:245 (2005); the linear model of
Lansford et al., J Biomed Opt 6:311 (2001)), then background and camera noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from abbe.errors import InputError
from abbe.simulate.camera import Camera

DYE_DIR = Path(__file__).resolve().parents[1] / "data" / "dyes"
#: Wavelength step (nm) of the fine grid on which spectra are dispersed onto the camera.
FINE_STEP_NM = 0.5
TRUTH_COLUMNS = [
    "frame",
    "x_nm",
    "y_nm",
    "photons",
    "spectral_photons",
    "emitter",
    "dye",
    "centroid_nm",
]


# ----------------------------------------------------------------------------- dyes
@dataclass(frozen=True, eq=False)
class Dye:
    """An emission spectrum: ``intensity`` (any scale) at ``wavelength_nm`` (increasing)."""

    name: str
    wavelength_nm: np.ndarray
    intensity: np.ndarray

    def weights(self, grid_nm: np.ndarray) -> np.ndarray:
        """Fraction of the light passed by a filter of ``grid_nm``'s extent in each grid step
        (interpolated, zero outside the table; sums to 1)."""
        w = np.interp(grid_nm, self.wavelength_nm, self.intensity, left=0.0, right=0.0)
        w = np.clip(w, 0.0, None)
        if w.sum() <= 0:
            raise InputError(
                f"dye {self.name} emits nothing between {grid_nm[0]:.0f} and "
                f"{grid_nm[-1]:.0f} nm; choose a range_nm that holds its spectrum"
            )
        return w / w.sum()

    def centroid_nm(self, range_nm: tuple[float, float]) -> float:
        """Photon-weighted mean wavelength of the light inside ``range_nm`` (the truth an
        sSMLM centroid estimates)."""
        grid = fine_grid(range_nm)
        return float(np.sum(grid * self.weights(grid)))


def fine_grid(range_nm: tuple[float, float]) -> np.ndarray:
    """Centres of the fine wavelength steps spanning ``range_nm``."""
    lo, hi = range_nm
    n = max(2, round((hi - lo) / FINE_STEP_NM))
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n


def bundled_dyes() -> list[str]:
    """Names of the spectra shipped with abbe (``src/abbe/data/dyes``; approximations, see
    PROVENANCE.md there)."""
    return sorted(p.stem for p in DYE_DIR.glob("*.csv"))


def load_dye(name: str, csv: str | Path | None = None) -> Dye:
    """A bundled dye by name, or the spectrum in ``csv`` (columns ``wavelength_nm,intensity``).

    Raises
    ------
    InputError : an unknown dye or an unreadable table (one line naming it).
    """
    path = Path(csv) if csv is not None else DYE_DIR / f"{name}.csv"
    if csv is None and not path.is_file():
        raise InputError(
            f"unknown dye {name!r}; bundled spectra: {', '.join(bundled_dyes())} "
            "(or give csv: FILE with columns wavelength_nm,intensity)"
        )
    try:
        table = pd.read_csv(path)
        wl = table["wavelength_nm"].to_numpy(np.float64)
        inten = table["intensity"].to_numpy(np.float64)
    except (OSError, KeyError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(
            f"cannot read the spectrum of {name} ({type(exc).__name__}); expected a CSV with "
            "columns wavelength_nm,intensity",
            path,
        ) from None
    order = np.argsort(wl)
    if len(wl) < 2 or not np.all(np.isfinite(inten)):
        raise InputError(f"the spectrum of {name} needs at least two finite rows", path)
    return Dye(name=name, wavelength_nm=wl[order], intensity=inten[order])


# ----------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Spectrometer:
    """Where the spectral image lies in an sSMLM frame and how it is dispersed.

    Parameters
    ----------
    region_x0 : first column of the spectral region; columns before it hold the spatial image.
    offset_x_px, offset_y_px : a point at spatial (x, y) sends ``reference_nm`` to
        (x + offset_x_px, y + offset_y_px) in frame pixels.
    reference_nm : the wavelength the offsets refer to.
    dispersion_nm_per_px : nm per pixel along x (positive: longer wavelengths to the right).
    range_nm : the emission filter's pass band (the spectrum outside it is not recorded).
    crop_height : rows of a localization's spectral crop (odd).
    margin_px : columns added on each side of the pass band in a crop (for the PSF's blur).
    """

    region_x0: int
    offset_x_px: float
    reference_nm: float
    dispersion_nm_per_px: float
    range_nm: tuple[float, float] = (640.0, 800.0)
    offset_y_px: float = 0.0
    crop_height: int = 9
    margin_px: int = 3

    def __post_init__(self) -> None:
        lo, hi = self.range_nm
        if not (0 < lo < hi) or self.dispersion_nm_per_px <= 0 or self.region_x0 < 1:
            raise InputError(
                "spectral: need 0 < range_nm[0] < range_nm[1], dispersion_nm_per_px > 0 and "
                "region_x0 ≥ 1"
            )
        if self.crop_height < 3 or self.crop_height % 2 == 0:
            raise InputError(f"spectral: crop_height must be odd and ≥ 3, got {self.crop_height}")

    @property
    def crop_width(self) -> int:
        """Columns of a spectral crop: the pass band plus the margins."""
        band = math.ceil((self.range_nm[1] - self.range_nm[0]) / self.dispersion_nm_per_px)
        return band + 2 * self.margin_px + 1

    def column(self, x_px: np.ndarray, wavelength_nm: np.ndarray | float) -> np.ndarray:
        """Continuous frame column where ``wavelength_nm`` from spatial ``x_px`` lands."""
        return (
            np.asarray(x_px, np.float64)
            + self.offset_x_px
            + (np.asarray(wavelength_nm) - self.reference_nm) / self.dispersion_nm_per_px
        )

    def crop_origin(self, x_px: np.ndarray, y_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First column and row of each localization's spectral crop (integers)."""
        col0 = np.floor(self.column(x_px, self.range_nm[0])).astype(np.int64) - self.margin_px
        row0 = np.floor(np.asarray(y_px) + self.offset_y_px).astype(np.int64)
        return col0, row0 - self.crop_height // 2

    def crop_wavelengths(self, x_px: np.ndarray, col0: np.ndarray) -> np.ndarray:
        """Wavelength (nm) at each crop column's centre, ``(N, W)``, given the spatial x."""
        j = np.arange(self.crop_width)
        centre = np.asarray(col0)[:, None] + j[None, :] + 0.5
        off = centre - np.asarray(x_px, np.float64)[:, None] - self.offset_x_px
        return self.reference_nm + off * self.dispersion_nm_per_px

    def describe(self) -> dict[str, Any]:
        return {
            "region_x0": self.region_x0,
            "offset_x_px": self.offset_x_px,
            "offset_y_px": self.offset_y_px,
            "reference_nm": self.reference_nm,
            "dispersion_nm_per_px": self.dispersion_nm_per_px,
            "range_nm": list(self.range_nm),
            "crop_height": self.crop_height,
            "margin_px": self.margin_px,
        }


@dataclass(frozen=True, eq=False)
class SpectralSetup:
    """The dyes of an experiment and the spectrometer that records them (``dyes.yaml``)."""

    dyes: tuple[Dye, ...]
    spectrometer: Spectrometer
    source: str = ""

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dyes]

    def centroids_nm(self) -> np.ndarray:
        """Each dye's true centroid in the pass band."""
        return np.array([d.centroid_nm(self.spectrometer.range_nm) for d in self.dyes])

    def describe(self) -> dict[str, Any]:
        return {
            "dyes": self.names,
            "centroids_nm": [round(float(c), 2) for c in self.centroids_nm()],
            "spectral": self.spectrometer.describe(),
            "source": self.source,
        }


def setup_from_dict(data: dict[str, Any], where: str | Path | None = None) -> SpectralSetup:
    """A :class:`SpectralSetup` from the mapping of a ``dyes.yaml``::

    dyes: [AF647, CF660C, CF680]          # bundled names, or {name: X, csv: file.csv}
    spectral: {region_x0: 64, offset_x_px: 64, reference_nm: 640,
               dispersion_nm_per_px: 4, range_nm: [640, 760]}
    """
    if not isinstance(data, dict) or "dyes" not in data or "spectral" not in data:
        raise InputError("a dyes file needs 'dyes' (a list) and 'spectral' (a mapping)", where)
    entries = data["dyes"]
    if not isinstance(entries, list) or len(entries) < 2:
        raise InputError("'dyes' must list at least two dyes", where)
    base = Path(where).parent if where is not None else Path(".")
    dyes = []
    for entry in entries:
        if isinstance(entry, str):
            dyes.append(_named_dye(entry, None, where))
        elif isinstance(entry, dict) and "name" in entry:
            csv = entry.get("csv")
            dyes.append(_named_dye(str(entry["name"]), base / csv if csv else None, where))
        else:
            raise InputError(f"dye entry {entry!r} is neither a name nor {{name, csv}}", where)
    if len({d.name for d in dyes}) != len(dyes):
        raise InputError("the dyes list names a dye twice", where)
    spec = dict(data["spectral"] or {})
    if "range_nm" in spec:
        spec["range_nm"] = tuple(float(v) for v in spec["range_nm"])
    try:
        spectrometer = Spectrometer(**spec)
    except TypeError as exc:
        raise InputError(f"spectral: {exc}".replace("__init__() ", ""), where) from None
    except InputError as exc:
        raise InputError(exc.message, where) from None
    return SpectralSetup(tuple(dyes), spectrometer, str(where or ""))


def _named_dye(name: str, csv: Path | None, where: str | Path | None) -> Dye:
    try:
        return load_dye(name, csv)
    except InputError as exc:
        raise InputError(exc.message, where) from None


def load_setup(path: str | Path) -> SpectralSetup:
    """Read a ``dyes.yaml`` (see :func:`setup_from_dict`)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError("no such dyes file", path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({str(exc).splitlines()[0]})", path) from None
    return setup_from_dict(data, path)


# ----------------------------------------------------------------------------- rendering
def spectral_profiles(
    setup: SpectralSetup,
    dye_index: np.ndarray,
    u_lo: np.ndarray,
    n_columns: int,
    *,
    sigma_px: float,
    shift_nm: np.ndarray | None = None,
) -> np.ndarray:
    """Fraction of each emitter's spectral photons in each of ``n_columns`` columns, ``(N, W)``.

    ``u_lo`` is the continuous column, counted from the first of the ``n_columns``, where the
    lower edge of the pass band lands; the fine spectrum is blurred by the PSF's pixel-
    integrated Gaussian along x. ``shift_nm`` moves each emitter's spectrum (tests, CRLB).
    """
    spec = setup.spectrometer
    grid = fine_grid(spec.range_nm)
    weights = np.stack([d.weights(grid) for d in setup.dyes])[np.asarray(dye_index)]  # (N, L)
    shift = np.zeros(len(u_lo)) if shift_nm is None else np.asarray(shift_nm, np.float64)
    u = (
        np.asarray(u_lo, np.float64)[:, None]
        + (grid[None, :] - spec.range_nm[0] + shift[:, None]) / spec.dispersion_nm_per_px
    )  # (N, L)
    edges = np.arange(n_columns + 1, dtype=np.float64)
    s = sigma_px * math.sqrt(2.0)
    cdf = special.erf((edges[None, None, :] - u[:, :, None]) / s)  # (N, L, W+1)
    per_step = np.diff(cdf, axis=2) / 2
    return np.einsum("nl,nlw->nw", weights, per_step)


def row_profiles(v: np.ndarray, n_rows: int, *, sigma_px: float) -> np.ndarray:
    """Fraction of each emitter's light in each of ``n_rows`` rows; ``v`` continuous row."""
    edges = np.arange(n_rows + 1, dtype=np.float64)
    cdf = special.erf((edges[None, :] - np.asarray(v, np.float64)[:, None]) / (sigma_px * 2**0.5))
    return np.diff(cdf, axis=1) / 2


@dataclass(frozen=True, eq=False)
class SpectralCrops:
    """Simulated spectral crops of single emitters with their truth (training, tests,
    benchmarks).

    Attributes
    ----------
    crops : (N, H, W) float32, photons (with noise and background).
    frac : (N,) where the pass band starts within its first crop column (0…1), as
        :func:`abbe.localize.spectral.spectral_crops` returns it from a localization.
    dye : (N,) dye index.
    row_centre : (N,) the localization's continuous row within its crop.
    photons, background : (N,) spectral photons and background (photons per pixel).
    centroid_nm : (N,) true centroid of each emitter's light in the pass band.
    wavelengths : (N, W) wavelength at each crop column's centre, as seen from the
        localization (its error included).
    """

    crops: np.ndarray
    frac: np.ndarray
    row_centre: np.ndarray
    dye: np.ndarray
    photons: np.ndarray
    background: np.ndarray
    centroid_nm: np.ndarray
    wavelengths: np.ndarray


def simulate_crops(
    setup: SpectralSetup,
    n: int,
    *,
    photons: tuple[float, float] = (200.0, 1000.0),
    background: tuple[float, float] = (5.0, 20.0),
    sigma_px: float = 1.3,
    position_error_px: float = 0.1,
    read_noise: float = 0.0,
    dye: np.ndarray | None = None,
    seed: int | np.random.Generator = 0,
) -> SpectralCrops:
    """Spectral crops centred as a localization would centre them, with known truth.

    The emitter's true x differs from its localization by a Gaussian error of
    ``position_error_px`` (the spatial channel's precision), which shifts the spectrum in the
    crop as it does in real data. Poisson noise on photons, plus Gaussian read noise (photons,
    rms); photons and background uniform in their ranges; dyes uniform unless given.
    """
    rng = np.random.default_rng(seed)
    spec = setup.spectrometer
    dye = rng.integers(0, len(setup.dyes), n) if dye is None else np.asarray(dye, np.int64)
    n_ph = rng.uniform(*photons, n)
    bg = rng.uniform(*background, n)
    x_loc = rng.uniform(10.0, 11.0, n)  # any position: only its fraction matters
    y_loc = rng.uniform(10.0, 11.0, n)
    x_true = x_loc + rng.normal(0.0, position_error_px, n)
    y_true = y_loc + rng.normal(0.0, position_error_px, n)
    col0, row0 = spec.crop_origin(x_loc, y_loc)
    u_lo = spec.column(x_true, spec.range_nm[0]) - col0
    profile = spectral_profiles(setup, dye, u_lo, spec.crop_width, sigma_px=sigma_px)
    rows = row_profiles(y_true + spec.offset_y_px - row0, spec.crop_height, sigma_px=sigma_px)
    mean = n_ph[:, None, None] * rows[:, :, None] * profile[:, None, :] + bg[:, None, None]
    crops = rng.poisson(mean).astype(np.float64)
    if read_noise > 0:
        crops += rng.normal(0.0, read_noise, crops.shape)
    frac = spec.column(x_loc, spec.range_nm[0]) - np.floor(spec.column(x_loc, spec.range_nm[0]))
    return SpectralCrops(
        crops=crops.astype(np.float32),
        frac=frac.astype(np.float32),
        row_centre=y_loc + spec.offset_y_px - row0,
        dye=dye,
        photons=n_ph,
        background=bg,
        centroid_nm=setup.centroids_nm()[dye],
        wavelengths=spec.crop_wavelengths(x_loc, col0),
    )


# ----------------------------------------------------------------------------- sSMLM frames
@dataclass(frozen=True, eq=False)
class SpectralSMLMSimulation:
    """A simulated sSMLM acquisition: frames with a spatial and a spectral region.

    Attributes
    ----------
    stack : (T, Y, X) float32 frames (photons for an ideal camera, else ADU); columns
        ``[0, setup.spectrometer.region_x0)`` hold the spatial image.
    truth : one row per emitter and frame, :data:`TRUTH_COLUMNS` (``dye`` is the name).
    setup : the dyes and spectrometer.
    camera : the camera that recorded the stack.
    params : every parameter, JSON-serializable.
    """

    stack: np.ndarray
    truth: pd.DataFrame
    setup: SpectralSetup
    camera: Camera
    params: dict[str, Any] = field(default_factory=dict)


def default_setup(
    dyes: tuple[str, ...] = ("AF647", "CF660C", "CF680"),
    *,
    spatial_width: int = 32,
    dispersion_nm_per_px: float = 5.0,
    range_nm: tuple[float, float] = (640.0, 800.0),
) -> SpectralSetup:
    """Three far-red dyes (bundled spectra) and a spectrometer whose region starts right after
    a ``spatial_width``-column spatial image, ``reference_nm`` at the band's lower edge."""
    spec = Spectrometer(
        region_x0=spatial_width,
        offset_x_px=float(spatial_width),
        reference_nm=range_nm[0],
        dispersion_nm_per_px=dispersion_nm_per_px,
        range_nm=range_nm,
    )
    return SpectralSetup(tuple(load_dye(d) for d in dyes), spec, "default")


def spectral_smlm(
    setup: SpectralSetup | None = None,
    *,
    frames: int = 100,
    size: tuple[int, int] = (32, 32),
    pixel_size_nm: float = 100.0,
    emitters_per_frame: float = 2.0,
    photons: tuple[float, float] = (1000.0, 3000.0),
    spectral_photons: tuple[float, float] = (200.0, 1000.0),
    background: tuple[float, float] = (10.0, 20.0),
    psf_sigma_nm: float = 130.0,
    camera: str | Camera = "ideal",
    seed: int = 0,
) -> SpectralSMLMSimulation:
    """Simulate sSMLM frames and their truth (dye and spectral centroid per emitter).

    Parameters
    ----------
    setup : dyes and spectrometer (default :func:`default_setup` for ``size[1]`` columns).
    frames : number of frames.
    size : (Y, X) of the spatial region; the frame is as wide as the spectral region needs.
    emitters_per_frame : mean number of emitters per frame (Poisson); emitters whose spectral
        crops would overlap another's are dropped (sSMLM needs sparse blinking).
    photons, spectral_photons : (min, max) per emitter in the spatial and the spectral image.
    background : (min, max) per frame, photons per pixel, both regions.
    psf_sigma_nm : σ of the Gaussian PSF in both regions.
    camera : ``ideal``, ``ccd``, ``scmos``, ``emccd`` or a :class:`Camera`.
    seed : seeds every random step.
    """
    setup = setup or default_setup(spatial_width=size[1])
    spec = setup.spectrometer
    if spec.region_x0 < size[1]:
        raise InputError(
            f"the spectral region starts at column {spec.region_x0}, inside the {size[1]}-column "
            "spatial image"
        )
    sigma_px = psf_sigma_nm / pixel_size_nm
    margin = 3.0
    right = float(spec.column(size[1] - margin, spec.range_nm[1])) + 4 * sigma_px
    width = max(spec.region_x0 + 1, math.ceil(right))
    height = size[0]
    rng = np.random.default_rng(seed)
    rows = []
    ident = 0
    for t in range(frames):
        k = rng.poisson(emitters_per_frame)
        x = rng.uniform(margin, size[1] - margin, k)
        # Rows: the whole spectral crop must lie in the frame.
        y_margin = max(margin, spec.crop_height // 2 + 1 - spec.offset_y_px)
        y = rng.uniform(
            y_margin, size[0] - max(margin, spec.crop_height // 2 + 1 + spec.offset_y_px), k
        )
        keep = _sparse(x, y, spec, sigma_px)
        for xi, yi in zip(x[keep], y[keep], strict=True):
            rows.append((t, xi, yi, ident))
            ident += 1
    n = len(rows)
    t_idx = np.array([r[0] for r in rows], np.int64)
    x_px = np.array([r[1] for r in rows], np.float64)
    y_px = np.array([r[2] for r in rows], np.float64)
    dye = rng.integers(0, len(setup.dyes), n)
    n_ph = rng.uniform(*photons, n)
    n_spec = rng.uniform(*spectral_photons, n)
    bg = rng.uniform(*background, frames)
    expected = np.broadcast_to(bg[:, None, None], (frames, height, width)).copy()
    ey = row_profiles(y_px, height, sigma_px=sigma_px)
    ex = row_profiles(x_px, width, sigma_px=sigma_px)
    ex[:, spec.region_x0 :] = 0.0  # the spatial image ends where the spectral region begins
    u_lo = spec.column(x_px, spec.range_nm[0])
    spectral = spectral_profiles(setup, dye, u_lo, width, sigma_px=sigma_px)
    spectral[:, : spec.region_x0] = 0.0
    sy = row_profiles(y_px + spec.offset_y_px, height, sigma_px=sigma_px)
    for i in range(n):
        expected[t_idx[i]] += n_ph[i] * np.outer(ey[i], ex[i])
        expected[t_idx[i]] += n_spec[i] * np.outer(sy[i], spectral[i])
    if isinstance(camera, str):
        camera = Camera.from_name(camera, (height, width), seed=seed + 1)
    stack = camera.expose(expected, seed=rng)
    truth = pd.DataFrame(
        {
            "frame": t_idx + 1,
            "x_nm": x_px * pixel_size_nm,
            "y_nm": y_px * pixel_size_nm,
            "photons": n_ph,
            "spectral_photons": n_spec,
            "emitter": np.arange(n),
            "dye": np.array(setup.names, dtype=object)[dye],
            "centroid_nm": setup.centroids_nm()[dye],
        }
    )
    params = {
        "modality": "ssmlm",
        "frames": frames,
        "size": [height, width],
        "spatial_size": list(size),
        "pixel_size_nm": pixel_size_nm,
        "emitters_per_frame": emitters_per_frame,
        "photons": list(photons),
        "spectral_photons": list(spectral_photons),
        "background": list(background),
        "psf_sigma_nm": psf_sigma_nm,
        "camera": camera.describe(),
        "seed": seed,
        **setup.describe(),
        "coordinates": "nm from the upper-left corner of the first pixel; frames from 1",
    }
    return SpectralSMLMSimulation(
        stack=stack, truth=truth, setup=setup, camera=camera, params=params
    )


def _sparse(x: np.ndarray, y: np.ndarray, spec: Spectrometer, sigma_px: float) -> np.ndarray:
    """Keep emitters whose spectral crops (and spots) overlap no other's in the frame."""
    keep = np.ones(len(x), bool)
    reach_y = spec.crop_height / 2 + 3 * sigma_px
    reach_x = spec.crop_width + 3 * sigma_px
    for i in range(len(x)):
        for j in range(len(x)):
            if i != j and abs(y[i] - y[j]) < reach_y and abs(x[i] - x[j]) < reach_x:
                keep[i] = False
    return keep


# ----------------------------------------------------------------------------- widefield
@dataclass(frozen=True, eq=False)
class MulticolourSimulation:
    """Multicolour widefield images with bleed-through between channels.

    Attributes
    ----------
    image : (C, Y, X) float32 recorded channels (photons for an ideal camera, else ADU).
    truth : (C, Y, X) float32 expected photons of each label in its own channel (the unmixed
        image a perfect method returns, before noise).
    matrix : (C, C) bleed-through ``M[channel, label]``, ``M[l, l] = 1``.
    background : (C,) photons per pixel added to each channel.
    params : every parameter, JSON-serializable.
    """

    image: np.ndarray
    truth: np.ndarray
    matrix: np.ndarray
    background: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


def multicolour(
    *,
    matrix: np.ndarray | None = None,
    structures: tuple[str, ...] = ("filaments", "puncta", "nuclei"),
    size: int = 128,
    pixel_size_nm: float = 100.0,
    peak_photons: float = 500.0,
    background: float = 10.0,
    psf_sigma_nm: float = 130.0,
    camera: str = "ideal",
    seed: int = 0,
) -> MulticolourSimulation:
    """Widefield images of one structure per label seen through ``len(structures)`` channels
    that each collect a fraction of the other labels' light.

    Parameters
    ----------
    matrix : (C, C) bleed-through, ``M[channel, label]`` relative to the label's own channel
        (diagonal 1). Default: 20 % to the neighbouring channels, 5 % two away.
    structures : specimen of each label (``abbe.simulate.specimens``).
    peak_photons : brightest expected photons of each label in its own channel.
    background : photons per pixel in every channel.
    """
    from scipy import ndimage

    from abbe.simulate.specimens import make as make_specimen

    c = len(structures)
    if matrix is None:
        d = np.abs(np.subtract.outer(np.arange(c), np.arange(c)))
        matrix = np.where(d == 0, 1.0, np.where(d == 1, 0.2, 0.05))
    matrix = np.asarray(matrix, np.float64)
    if matrix.shape != (c, c):
        raise InputError(f"the matrix must be {c}×{c} for {c} structures, got {matrix.shape}")
    rng = np.random.default_rng(seed)
    truth = np.empty((c, size, size), np.float64)
    for k, name in enumerate(structures):
        spec = make_specimen(name, (size, size), pixel_size_nm=pixel_size_nm, seed=rng)
        img = ndimage.gaussian_filter(spec.density.astype(np.float64), psf_sigma_nm / pixel_size_nm)
        truth[k] = peak_photons * img / max(float(img.max()), 1e-12)
    mixed = np.einsum("dl,lyx->dyx", matrix, truth) + background
    cam = Camera.from_name(camera, (size, size), seed=seed + 1)
    image = np.stack([cam.expose(mixed[k], seed=rng) for k in range(c)])
    params = {
        "modality": "multicolour",
        "structures": list(structures),
        "size": size,
        "pixel_size_nm": pixel_size_nm,
        "peak_photons": peak_photons,
        "background": background,
        "psf_sigma_nm": psf_sigma_nm,
        "matrix": matrix.tolist(),
        "camera": cam.describe(),
        "seed": seed,
    }
    return MulticolourSimulation(
        image=image.astype(np.float32),
        truth=truth.astype(np.float32),
        matrix=matrix,
        background=np.full(c, float(background)),
        params=params,
    )
