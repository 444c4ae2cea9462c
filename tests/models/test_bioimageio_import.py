"""Running bioimage.io packages: the third-party nuclei U-Net against its own test tensors, a
hand-made TorchScript / state-dict package, tiling without seams, the processing steps against
their formulas, and one-line errors for what abbe does not run."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from abbe import models
from abbe.errors import AbbeWarning, InputError
from abbe.models.packages import processing
from abbe.models.packages.labels import labels_from_maps, read_channels
from abbe.models.packages.spec import Op
from tests.models.test_bioimageio_import_helpers import (  # noqa: F401 (private_home: autouse)
    make_package,
    nuclei_folder,
    private_home,
    tiny_network,
    write_files,
)

# bioimage.io's reproducibility tolerance (spec 0.5 defaults, bioimageio.core 0.11 test):
# |output − expected| ≤ atol + rtol·|expected| with atol = rtol = 1e-3.
SPEC_RTOL = SPEC_ATOL = 1e-3


@pytest.fixture(scope="module")
def nuclei(shared_data):
    return models.load(nuclei_folder(shared_data))


@pytest.fixture(scope="module")
def tiny_zip(tmp_path_factory):
    return make_package(tmp_path_factory.mktemp("pkg") / "tiny.zip")


# ----------------------------------------------------------------------------- third party
def test_nuclei_unet_reproduces_its_own_test_output(nuclei):
    # The package's ONNX weights (its TorchScript file is not in the copy; its state dict is a URL).
    assert nuclei.weight_format == "onnx"
    assert set(nuclei.runner.skipped) == {"torchscript"}
    assert "Ronneberger" in nuclei.describe() and "UNet 2D Nuclei Broad" in nuclei.describe()
    x, expected = nuclei.test_tensors()
    got = nuclei.predict_tensor(x, device="cpu")
    assert got.shape == expected.shape == (1, 1, 512, 512)
    np.testing.assert_allclose(got, expected, rtol=SPEC_RTOL, atol=SPEC_ATOL)
    # Measured 1.7e-6 (onnxruntime CPU): far inside the spec, so a processing slip would show.
    assert np.abs(got - expected).max() < 1e-4
    # The same through abbe's own axes.
    plane = nuclei.predict(x[0, 0], "YX", device="cpu")
    assert plane.shape == (512, 512) and np.abs(plane - expected[0, 0]).max() < 1e-4


def test_nuclei_unet_from_a_zip(nuclei, tmp_path):
    # The package as bioimage.io distributes it: one zip.
    folder = nuclei.source
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    m = models.load(write_files(tmp_path / "nuclei.zip", files))
    x, expected = m.test_tensors()
    assert np.abs(m.predict_tensor(x, device="cpu") - expected).max() < 1e-4


def test_fixed_size_package_is_tiled_without_seams(nuclei):
    # A 712² image through a network that takes only 512² windows: cores of 512 − 2·32 px.
    x, _ = nuclei.test_tensors()
    big = np.pad(x[0, 0], 100, mode="reflect")
    assert nuclei.tile_shape(big.shape) == (448, 448)
    tiled = nuclei.predict(big, "YX", device="cpu")
    # Reference: one 512² window across the seam at 448, with the same (whole-image)
    # normalization; beyond the package's 32-px halo it must match the tiles. The U-Net sees
    # farther than its declared halo, so not to float rounding: measured max 1.8e-3.
    pre = processing.apply(nuclei.spec.input.processing, big[None, None], nuclei._in_ids, {})
    s = 192  # on the network's 16-px pooling grid, as the tiles are
    window = np.ascontiguousarray(pre[:, :, s : s + 512, s : s + 512], dtype=np.float32)
    one = 1 / (1 + np.exp(-nuclei.runner(window, "cpu")[0, 0]))
    diff = np.abs(one - tiled[s : s + 512, s : s + 512])[32:-32, 32:-32]
    assert diff.max() < 0.01 and diff.mean() < 1e-4


# ----------------------------------------------------------------------------- hand-made
def test_tiny_torchscript_package_round_trips(tiny_zip):
    from abbe.models.packages.model import PackageModel

    m = models.load(tiny_zip)
    assert isinstance(m, PackageModel) and PackageModel.load(tiny_zip).spec == m.spec
    assert m.weight_format == "torchscript" and m.spec.name == "tiny conv"
    x, expected = m.test_tensors()
    got = m.predict_tensor(x, device="cpu")
    assert np.abs(got - expected).max() < 1e-5  # float32 convolutions, same formula
    # abbe's axes: YX in, YX out (one output channel).
    assert np.abs(m.predict(x[0, 0], "YX", device="cpu") - expected[0, 0]).max() < 1e-5


def test_state_dict_package_builds_its_architecture(tmp_path):
    path = make_package(tmp_path / "sd", formats=("pytorch_state_dict",), as_zip=False)
    m = models.load(path)
    assert m.weight_format == "pytorch_state_dict"
    x, expected = m.test_tensors()
    assert np.abs(m.predict_tensor(x, device="cpu") - expected).max() < 1e-5


def test_torchscript_is_preferred_over_a_state_dict(tmp_path):
    path = make_package(tmp_path / "both.zip", formats=("pytorch_state_dict", "torchscript"))
    assert models.load(path).weight_format == "torchscript"


def test_tiled_equals_untiled_on_a_larger_image(tiny_zip):
    # 100 × 90 (not a valid size: windows are padded to 16 + k·8): cores of 24 px with an 8-px
    # margin (halo 4, rounded to the step) vs one window. Exact up to float32 rounding.
    m = models.load(tiny_zip)
    img = np.random.default_rng(1).gamma(2.0, 50.0, size=(100, 90)).astype(np.float32)
    whole = m.predict(img, "YX", tile=None, device="cpu")
    tiled = m.predict(img, "YX", tile=24, device="cpu")
    assert m.tile_shape(img.shape, 24) == (24, 24)
    assert np.abs(whole - tiled).max() < 1e-5
    # Interior pixels (2-px receptive radius from the border) equal the network on the image.
    net = tiny_network(0)
    from tests.models.test_bioimageio_import_helpers import expected_output

    direct = expected_output(net, img[None, None].astype(np.float64))[0, 0]
    assert np.abs(whole - direct)[2:-2, 2:-2].max() < 1e-4


def test_frames_are_the_batch_and_keep_their_own_statistics(tiny_zip):
    m = models.load(tiny_zip)
    x, expected = m.test_tensors()
    stack = np.stack([x[0, 0], 3 * x[0, 0] + 50])  # scale_range per sample: same output
    out = m.predict(stack, "TYX", device="cpu")
    assert out.shape == (2, 48, 40)
    assert np.abs(out - expected[0, 0]).max() < 1e-4


def test_pixel_size_far_from_the_package_warns(tmp_path):
    m = models.load(make_package(tmp_path / "px.zip", pixel_size_um=0.125))
    assert m.spec.pixel_size_nm == pytest.approx(125.0)
    with pytest.warns(AbbeWarning, match="pixel size 250 nm"):
        m.check_pixel_size(250.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AbbeWarning)
        m.check_pixel_size(140.0)  # within 25 %: silent


def test_the_hand_made_package_passes_the_real_client(tmp_path):
    # bioimageio.core (the zoo's own test) accepts the package these tests build and reproduces
    # its test output, computed here without abbe: the fixture is a real spec-0.5 package.
    core = pytest.importorskip("bioimageio.core")
    path = make_package(tmp_path / "pkg", as_zip=False, pixel_size_um=0.125, out_channels=2)
    summary = core.test_model(str(path / "rdf.yaml"))
    assert summary.status == "passed", [e.msg for d in summary.details for e in d.errors]
    m = models.load(path)
    x, expected = m.test_tensors()
    assert np.abs(m.predict_tensor(x, device="cpu") - expected).max() < 1e-5


# ----------------------------------------------------------------------------- errors
def _rdf_edit(**changes):
    def edit(rdf):
        for key, value in changes.items():
            if callable(value):
                value(rdf)
            else:
                rdf[key] = value

    return edit


def _op(step):
    return lambda rdf: rdf["inputs"][0]["preprocessing"].append(step)


def _z(rdf):
    rdf["inputs"][0]["axes"].insert(2, {"type": "space", "id": "z", "size": 8})


def _tf(rdf):
    rdf["weights"] = {"tensorflow_saved_model_bundle": {"source": "tf.zip"}}


def _offset(rdf):
    # An output 2× finer but 4 px larger than 2× the input: not a whole factor of its size.
    for axis in rdf["outputs"][0]["axes"][2:]:
        axis.update(scale=0.5, size={"tensor_id": "raw", "axis_id": axis["id"], "offset": 4})
    for axis in rdf["inputs"][0]["axes"][2:]:
        axis.update(scale=1.0)


def _bad_hash(rdf):
    rdf["weights"]["torchscript"]["sha256"] = "0" * 64


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("not-zip", "is not a zip file"),
        ("no-rdf", "no rdf.yaml or bioimageio.yaml"),
        ("bad-yaml", "rdf.yaml is not valid YAML"),
        ("spec-0.4", "is spec 0.4.10; abbe reads spec 0.5"),
        ("dataset", "describes a 'dataset', not a model"),
        ("no-inputs", "has no 'inputs' field"),
        ("3d", "not 3D (z), time or index axes"),
        ("tensorflow", "has only tensorflow_saved_model_bundle weights"),
        ("missing-weights", "torchscript: weights.pt is not in the package"),
        ("url-weights", "is a URL (abbe does not download weights)"),
        ("bad-hash", "weights.pt: its SHA-256 differs"),
        ("unknown-op", "preprocessing step 'stardist_postprocess' is not supported"),
        ("offset", "the output's y and x axes are not the input's size times one whole factor"),
        ("outside", "names a file outside the package: ../weights.pt"),
    ],
)
def test_what_abbe_cannot_run_is_one_line_naming_the_package(tmp_path, kind, match):
    path = tmp_path / "p.zip"
    if kind == "not-zip":
        path.write_text("not a zip")
    elif kind == "no-rdf":
        write_files(path, {"weights.pt": b"x"})
    elif kind == "bad-yaml":
        write_files(path, {"rdf.yaml": b"inputs: [\n  - {id: raw\n"})
    else:
        edits = {
            "spec-0.4": _rdf_edit(format_version="0.4.10"),
            "dataset": _rdf_edit(type="dataset"),
            "no-inputs": lambda rdf: rdf.pop("inputs"),
            "3d": _z,
            "tensorflow": _tf,
            "missing-weights": None,
            "url-weights": lambda rdf: rdf["weights"]["torchscript"].update(
                source="https://example.com/weights.pt"
            ),
            "bad-hash": _bad_hash,
            # Not a spec 0.5 step (softmax, the former example, is now run).
            "unknown-op": _op({"id": "stardist_postprocess"}),
            "offset": _offset,
            "outside": lambda rdf: rdf["weights"]["torchscript"].update(source="../weights.pt"),
        }
        drop = ("weights.pt",) if kind == "missing-weights" else ()
        make_package(path, edit=edits[kind], drop=drop)
    with pytest.raises(InputError, match=re.escape(match)) as info:
        models.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


# ----------------------------------------------------------------------------- processing
AXES = ("batch", "channel", "y", "x")


def test_processing_steps_follow_their_formulas():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(2, 2, 16, 16)).astype(np.float32)

    def run(step, kwargs=None, refs=None):
        return processing.apply([Op(step, kwargs or {})], x, AXES, refs or {})

    z = run("zero_mean_unit_variance", {"axes": ["y", "x"]})
    np.testing.assert_allclose(z.mean(axis=(2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(2, 3)), 1, atol=1e-4)
    f = run(
        "fixed_zero_mean_unit_variance", {"mean": [1.0, 2.0], "std": [2.0, 4.0], "axis": "channel"}
    )
    np.testing.assert_allclose(f[:, 1], (x[:, 1] - 2.0) / (4.0 + 1e-6), rtol=1e-6)
    s = run(
        "scale_range", {"axes": ["batch", "y", "x"], "min_percentile": 0, "max_percentile": 100}
    )
    np.testing.assert_allclose(s.min(axis=(0, 2, 3)), 0, atol=1e-6)  # per channel over the batch
    np.testing.assert_allclose(s.max(axis=(0, 2, 3)), 1, atol=1e-5)
    lin = run("scale_linear", {"gain": [2.0, 3.0], "offset": [0.0, 1.0], "axis": "channel"})
    np.testing.assert_allclose(lin[:, 1], 3 * x[:, 1] + 1, rtol=1e-6)
    assert run("clip", {"min": 0.0, "max": 4.0}).max() <= 4.0
    assert processing.apply([Op("sigmoid")], np.zeros(3, np.float32), AXES, {})[0] == 0.5
    # softmax along the channel axis: exp(x_c) / Σ exp, so sums are 1 and ratios e^(Δx).
    soft = run("softmax", {"axis": "channel"})
    np.testing.assert_allclose(soft.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(
        soft[:, 0] / soft[:, 1], np.exp(x[:, 0] - x[:, 1]).astype(np.float64), rtol=1e-4
    )
    assert run("binarize", {"threshold": 5.0}).sum() == (x > 5.0).sum()
    assert run("ensure_dtype", {"dtype": "uint8"}).dtype == np.uint8
    ref = rng.normal(100.0, 10.0, size=x.shape).astype(np.float32)
    smv = run(
        "scale_mean_variance", {"reference_tensor": "raw", "axes": ["y", "x"]}, {"raw": (ref, AXES)}
    )
    np.testing.assert_allclose(smv.mean(axis=(2, 3)), ref.mean(axis=(2, 3)), rtol=1e-5)
    np.testing.assert_allclose(smv.std(axis=(2, 3)), ref.std(axis=(2, 3)), rtol=1e-4)


# ----------------------------------------------------------------------------- labels
def _disks(centres, shape=(40, 60), r=8):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return [((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) for cy, cx in centres]


def test_labels_from_a_probability_and_a_boundary_channel(nuclei):
    reading = read_channels(nuclei.spec)
    assert (reading.foreground, reading.boundary, reading.guessed) == (0, None, False)
    a, b = _disks([(20, 20), (20, 34)])  # two disks overlapping in x 26–28
    fg = (a | b).astype(np.float32)[None]
    assert labels_from_maps(fg, reading).max() == 1  # one component: not split (as documented)
    from dataclasses import replace

    boundary = np.zeros_like(fg[0])
    boundary[:, 26:29] = fg[0, :, 26:29]  # the contact line
    two = labels_from_maps(np.stack([fg[0], boundary]), replace(reading, boundary=1))
    assert two.max() == 2


def test_unnamed_channel_is_a_guess_and_a_restoration_package_makes_no_labels(tmp_path):
    def sigmoid_unnamed(rdf):
        rdf["outputs"][0]["axes"][1] = {"type": "channel", "size": 1}
        rdf["outputs"][0]["postprocessing"] = [{"id": "sigmoid"}]

    guess = models.load(make_package(tmp_path / "g.zip", edit=sigmoid_unnamed))
    reading = read_channels(guess.spec)
    assert reading.guessed
    with pytest.warns(AbbeWarning, match="a guess"):
        labels_from_maps(np.ones((1, 20, 20), np.float32), reading)
    restoring = models.load(make_package(tmp_path / "r.zip"))
    with pytest.raises(InputError, match="abbe restore"):
        read_channels(restoring.spec)
