"""Camera models in physical units: photons → photo-electrons → (EM gain) → read noise → ADU.

ADU = gain · e⁻ + offset (DESIGN convention). An EMCCD multiplies each photo-electron in a
Gamma-distributed register, which doubles the shot-noise variance at high gain (excess noise factor
F² = 2). sCMOS pixels each have their own offset, gain and read-noise variance.

References
----------
Basden, Haniff & Mackay, MNRAS 345:985 (2003) (EMCCD register statistics).
Huang et al., Nat Methods 10:653 (2013) (sCMOS per-pixel noise model).
Mortensen et al., Nat Methods 7:377 (2010) (excess noise factor in localization precision).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from abbe.errors import InputError

CameraKind = Literal["ideal", "ccd", "scmos", "emccd"]


@dataclass(frozen=True, eq=False)
class Camera:
    """A camera that turns expected photon counts into recorded values.

    Parameters
    ----------
    kind : ``ideal`` (output in photons, optional read noise), ``ccd``, ``scmos`` or ``emccd``.
    qe : quantum efficiency, photons → photo-electrons.
    gain : conversion gain in ADU per electron at the output (after any EM gain).
    offset : baseline in ADU, a scalar or a per-pixel map (sCMOS).
    read_noise : read-noise standard deviation in electrons at the output amplifier (the
        datasheet number; for an EMCCD it is divided by the EM gain when referred to the input),
        a scalar or a per-pixel map (sCMOS).
    em_gain : electron-multiplying gain (1 for no EM register).
    gain_map : per-pixel gain factor multiplying ``gain`` (sCMOS), or None.
    bits : ADC bit depth; values are rounded and clipped to ``[0, 2**bits - 1]``. None: no ADC.
    full_well : saturation in photo-electrons before EM gain, or None.
    """

    kind: CameraKind = "ideal"
    qe: float = 1.0
    gain: float = 1.0
    offset: float | np.ndarray = 0.0
    read_noise: float | np.ndarray = 0.0
    em_gain: float = 1.0
    gain_map: np.ndarray | None = None
    bits: int | None = None
    full_well: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.qe <= 1:
            raise InputError(f"quantum efficiency must be in (0, 1], got {self.qe}")
        if self.gain <= 0 or self.em_gain < 1:
            raise InputError("gain must be positive and EM gain at least 1")
        if np.any(np.asarray(self.read_noise) < 0):
            raise InputError("read noise must not be negative")

    # ---------------------------------------------------------------- presets
    @classmethod
    def ideal(cls, read_noise: float = 0.0) -> Camera:
        """Photon-counting detector: output in photons, Poisson noise plus optional read noise."""
        return cls(kind="ideal", read_noise=read_noise)

    @classmethod
    def ccd(
        cls,
        *,
        qe: float = 0.7,
        gain: float = 0.5,
        offset: float = 100.0,
        read_noise: float = 6.0,
        bits: int | None = 16,
    ) -> Camera:
        """A cooled CCD: uniform gain and offset, a few electrons of read noise."""
        return cls(kind="ccd", qe=qe, gain=gain, offset=offset, read_noise=read_noise, bits=bits)

    @classmethod
    def emccd(
        cls,
        *,
        em_gain: float = 100.0,
        qe: float = 0.9,
        gain: float = 1 / 45,
        offset: float = 100.0,
        read_noise: float = 74.4,
        bits: int | None = 16,
    ) -> Camera:
        """A back-illuminated EMCCD with typical settings: QE 0.9, EM gain 100, 45 output electrons
        per ADU, 74.4 e⁻ read noise at the output (under 1 e⁻ referred to the input), baseline
        100 ADU. Replace them with your camera's datasheet or calibration."""
        return cls(
            kind="emccd",
            qe=qe,
            gain=gain,
            offset=offset,
            read_noise=read_noise,
            em_gain=em_gain,
            bits=bits,
        )

    @classmethod
    def scmos(
        cls,
        shape: tuple[int, ...],
        *,
        qe: float = 0.8,
        gain: float = 2.0,
        offset: float = 100.0,
        read_noise: float = 1.6,
        gain_spread: float = 0.03,
        offset_spread: float = 2.0,
        noise_spread: float = 0.4,
        bits: int | None = 16,
        seed: int | np.random.Generator | None = 0,
    ) -> Camera:
        """An sCMOS camera with per-pixel offset, gain and read-noise maps.

        Parameters
        ----------
        shape : (Y, X) of the sensor maps.
        gain : mean conversion gain (ADU/e⁻); pixels vary by ``gain_spread`` (relative SD).
        offset : mean baseline (ADU); pixels vary by ``offset_spread`` ADU (SD).
        read_noise : median read noise (e⁻); per-pixel values are log-normal with log-SD
            ``noise_spread``, giving the long tail of noisy pixels seen in real sensors.
        seed : draws the maps; the same seed gives the same sensor.
        """
        rng = np.random.default_rng(seed)
        shape = tuple(shape[-2:])
        gain_map = np.clip(1 + gain_spread * rng.standard_normal(shape), 0.5, 1.5)
        offset_map = offset + offset_spread * rng.standard_normal(shape)
        noise_map = read_noise * np.exp(noise_spread * rng.standard_normal(shape))
        return cls(
            kind="scmos",
            qe=qe,
            gain=gain,
            offset=offset_map.astype(np.float32),
            read_noise=noise_map.astype(np.float32),
            gain_map=gain_map.astype(np.float32),
            bits=bits,
        )

    @classmethod
    def from_name(
        cls, name: str, shape: tuple[int, ...], *, read_noise: float | None = None, seed: int = 0
    ) -> Camera:
        """Build a preset by name (``ideal``, ``ccd``, ``scmos``, ``emccd``), optionally with a
        different read noise (e⁻; for ``scmos`` the median)."""
        kw = {} if read_noise is None else {"read_noise": read_noise}
        if name == "ideal":
            return cls.ideal(**kw)
        if name == "ccd":
            return cls.ccd(**kw)
        if name == "emccd":
            return cls.emccd(**kw)
        if name == "scmos":
            return cls.scmos(shape, seed=seed, **kw)
        raise InputError(f"unknown camera {name!r}; choose ideal, ccd, scmos or emccd")

    # ---------------------------------------------------------------- model
    @property
    def total_gain(self) -> float | np.ndarray:
        """ADU per photo-electron (before EM gain), per pixel where the gain varies."""
        g = self.gain * self.em_gain
        return g if self.gain_map is None else g * self.gain_map

    @property
    def excess_noise_factor(self) -> float:
        """F² multiplying the shot-noise variance: 2 for an EM register, 1 otherwise."""
        return 2.0 if self.em_gain > 1 else 1.0

    def expected(self, photons: np.ndarray) -> np.ndarray:
        """Mean recorded value for expected photon counts (before ADC rounding and clipping)."""
        return self.total_gain * self.qe * np.asarray(photons) + self.offset

    def nominal(self, photons: np.ndarray) -> np.ndarray:
        """Noise-free response with the sensor's average gain and offset (ADU).

        Per-pixel offset and gain variations of an sCMOS are fixed-pattern noise, not signal:
        this is the image a perfect restoration of the camera's output should return.
        """
        gain = self.gain * self.em_gain * self.qe
        if self.gain_map is not None:
            gain = gain * float(np.mean(self.gain_map))
        return gain * np.asarray(photons) + float(np.mean(self.offset))

    def variance(self, photons: np.ndarray) -> np.ndarray:
        """Variance of the recorded value (ADU²) for expected photon counts, without the ADC."""
        g = self.gain if self.gain_map is None else self.gain * self.gain_map
        shot = self.excess_noise_factor * self.em_gain**2 * self.qe * np.asarray(photons)
        return g**2 * (shot + np.asarray(self.read_noise) ** 2)

    def expose(
        self, photons: np.ndarray, *, seed: int | np.random.Generator | None = 0
    ) -> np.ndarray:
        """Record an image of expected photon counts ``photons`` (float32 out).

        Parameters
        ----------
        photons : expected photons per pixel (≥ 0), any shape whose last two axes match the
            sensor maps.
        seed : random seed or generator; the same seed gives the same image.
        """
        rng = np.random.default_rng(seed)
        lam = np.asarray(photons, dtype=np.float64)
        if np.any(lam < 0) or not np.all(np.isfinite(lam)):
            raise InputError("expected photon counts must be finite and non-negative")
        electrons = rng.poisson(self.qe * lam).astype(np.float64)
        if self.full_well is not None:
            electrons = np.minimum(electrons, self.full_well)
        if self.em_gain > 1:
            # The register multiplies each electron: a sum of n exponentials is Gamma(n, G).
            electrons = rng.gamma(np.maximum(electrons, 1e-12), self.em_gain) * (electrons > 0)
        noise = np.asarray(self.read_noise, dtype=np.float64)
        if np.any(noise > 0):
            electrons = electrons + noise * rng.standard_normal(lam.shape)
        g = self.gain if self.gain_map is None else self.gain * self.gain_map
        adu = g * electrons + self.offset
        if self.bits is not None:
            adu = np.clip(np.round(adu), 0, 2**self.bits - 1)
        return adu.astype(np.float32)

    def to_photons(self, recorded: np.ndarray) -> np.ndarray:
        """Convert recorded values back to (expected-scale) photons: (ADU − offset)/(gain·G·QE)."""
        return (
            (np.asarray(recorded, dtype=np.float32) - self.offset) / (self.total_gain * self.qe)
        ).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """Scalar summary of the camera for records (maps reduced to mean, min and max)."""

        def summary(value: Any) -> Any:
            if value is None or np.isscalar(value):
                return value
            arr = np.asarray(value)
            return {"mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max())}

        return {
            "kind": self.kind,
            "qe": self.qe,
            "gain_adu_per_e": self.gain,
            "offset_adu": summary(self.offset),
            "read_noise_e": summary(self.read_noise),
            "em_gain": self.em_gain,
            "gain_map": summary(self.gain_map),
            "bits": self.bits,
            "full_well_e": self.full_well,
            "units": "photons" if self.kind == "ideal" else "ADU",
        }
