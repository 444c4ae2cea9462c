"""Reproduce the bundled samples in src/abbe/data/sample_data/ (simulated: no third-party data).

``widefield-filaments``: a 256² sCMOS acquisition (uint16 ADU) of microtubule-like filaments,
100 nm pixels, NA 1.3, 632 nm, peak 15 photons over 5 background photons: a dim, noisy image of
the kind CARE is for. Saved beside its noise-free expectation (float32 ADU) and the full
simulation parameters. Its seed is not among the seeds used to train the bundled models.

    .venv/bin/python scripts/make_samples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src" / "abbe" / "data" / "sample_data"
SAMPLES = {
    "widefield-filaments": {
        "structure": "filaments",
        "size": 256,
        "pixel_size_nm": 100.0,
        "na": 1.3,
        "wavelength_nm": 632.0,
        "photons": 15.0,
        "background": 5.0,
        "camera": "scmos",
        "seed": 424242,
    },
}


def main() -> None:
    from abbe import io, simulate

    OUT.mkdir(parents=True, exist_ok=True)
    for name, spec in SAMPLES.items():
        settings = dict(spec)
        structure = settings.pop("structure")
        sim = simulate.widefield(structure, **settings)
        meta = io.Meta(
            axes="YX",
            pixel_size_nm=spec["pixel_size_nm"],
            extra={"sample": name, "simulated_by": "scripts/make_samples.py"},
        )
        io.write(OUT / f"{name}_noisy.tif", sim.input.astype(np.uint16), meta, overwrite=True)
        io.write(OUT / f"{name}_clean.tif", sim.expected_input, meta, overwrite=True)
        (OUT / f"{name}.json").write_text(json.dumps(sim.params, indent=2) + "\n")
        print(f"wrote {name}: noisy (uint16 ADU), clean (float32 ADU), parameters")


if __name__ == "__main__":
    main()
