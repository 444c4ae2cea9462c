"""Write the approximate emission spectra of ``src/abbe/data/dyes/`` (see PROVENANCE.md there).

No openly licensed measured spectra of these dyes were found, so each is built from its
published emission maximum: a cyanine-like band shape in wavenumber, a main Gaussian band of
700 cm⁻¹ FWHM and a vibronic shoulder 1100 cm⁻¹ to the red at 0.30 of its height (the shape
of the measured spectra of Cy5-type dyes; Birks, *Photophysics of Aromatic Molecules*, 1970,
ch. 3, for the vibronic progression). Run: ``python scripts/make_dye_spectra.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: name → (emission maximum nm, source of that number)
PEAKS = {
    "DY634": (658.0, "Dyomics DY-634 data sheet: abs 635 nm, em 658 nm"),
    "AF647": (665.0, "Thermo Fisher Alexa Fluor 647: abs 650 nm, em 665 nm"),
    "CF660C": (685.0, "Biotium CF660C: abs 667 nm, em 685 nm"),
    "CF680": (698.0, "Biotium CF680: abs 681 nm, em 698 nm"),
}
FWHM_CM = 700.0
SHOULDER_CM = 1100.0
SHOULDER_HEIGHT = 0.30


def spectrum(peak_nm: float, wavelength_nm: np.ndarray) -> np.ndarray:
    """Relative emission (peak 1) at ``wavelength_nm`` of a band whose maximum is ``peak_nm``."""
    nu = 1e7 / wavelength_nm
    nu0 = 1e7 / peak_nm
    s = FWHM_CM / 2.3548
    band = np.exp(-0.5 * ((nu - nu0) / s) ** 2)
    band += SHOULDER_HEIGHT * np.exp(-0.5 * ((nu - nu0 + SHOULDER_CM) / s) ** 2)
    # Intensity per unit wavelength: dν/dλ = 1e7/λ² (the band is defined per wavenumber).
    band /= wavelength_nm**2
    return band / band.max()


def main() -> None:
    folder = Path(__file__).resolve().parents[1] / "src" / "abbe" / "data" / "dyes"
    folder.mkdir(parents=True, exist_ok=True)
    wl = np.arange(550.0, 851.0, 1.0)
    for name, (peak, _) in PEAKS.items():
        values = spectrum(peak, wl)
        rows = "\n".join(f"{w:.0f},{v:.5f}" for w, v in zip(wl, values, strict=True))
        (folder / f"{name}.csv").write_text("wavelength_nm,intensity\n" + rows + "\n")


if __name__ == "__main__":
    main()
