"""Sample data for napari's File ▸ Open Sample menu: the images bundled with abbe and small
seeded simulations (no network; the same pixels every time)."""

from __future__ import annotations

from abbe.napari._layers import LayerData, image_layer

#: Seed of the simulated samples.
SEED = 7


def widefield_filaments() -> list[LayerData]:
    """The bundled widefield filaments: the noisy acquisition (ADU) and its noise-free truth."""
    from abbe.data.samples import sample

    s = sample("widefield-filaments")
    clean_meta = s.meta.replace(extra={**s.meta.extra, "units": "photons"})
    return [
        image_layer(s.noisy, s.meta, name="widefield-filaments"),
        image_layer(s.clean, clean_meta, name="widefield-filaments (clean)", visible=False),
    ]


def nuclei() -> list[LayerData]:
    """Simulated fluorescent nuclei (256², photons) and their true instance labels."""
    from abbe.io import Meta
    from abbe.simulate.cells import nuclei_image

    sim = nuclei_image((256, 256), seed=SEED)
    meta = Meta("YX", extra={"units": "photons", "simulated": "abbe.simulate.cells.nuclei_image"})
    return [
        image_layer(sim.image, meta, name="nuclei"),
        image_layer(
            sim.labels, meta, name="nuclei (true labels)", layer_type="labels", visible=False
        ),
    ]


def smlm_stack() -> list[LayerData]:
    """A simulated SMLM stack: 40 frames of 48², 100 nm pixels, sparse blinking emitters on
    filaments, in photons (an ideal camera), with its true positions as points."""
    from abbe.io import Meta
    from abbe.napari._layers import points_layer
    from abbe.simulate.smlm import smlm

    sim = smlm(frames=40, size=48, density=0.3, structure="filaments", camera="ideal", seed=SEED)
    px = sim.params["pixel_size_nm"]
    meta = Meta("TYX", pixel_size_nm=px, extra={"units": "photons"})
    truth = points_layer(sim.truth.drop(columns=["emitter"]), name="smlm (true positions)")
    truth[1]["visible"] = False
    return [image_layer(sim.stack.astype("float32"), meta, name="smlm"), truth]
