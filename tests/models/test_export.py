"""Export (issue 22, items 1 and 3): bioimage.io packages checked by the real client, and ONNX
and TorchScript networks that predict what abbe predicts.

Truth here is abbe's own prediction through its public ``predict`` functions (tiling,
normalization, decoding included) on small seeded images; the exported weights must reproduce
it within 1e-4 (max abs, in the package's output units: normalized for restoration,
probabilities for maps and classes, emitters per pixel for Deep-STORM). The bioimage.io
packages must pass ``bioimageio.core``'s ``test_description`` offline, every weight format.
"""

from __future__ import annotations

import gc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from abbe import models
from abbe.errors import ModelError
from abbe.models.export.bioimage_package import postprocess, preprocess

BUNDLED = ["denoise-widefield", "sr-widefield-2x", "nuclei-fluo", "nuclei-shape"]
ROUND_TRIP = 1e-4  # the target, max abs in the package's output units


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    # ONNX Runtime and bioimageio write caches under ~; keep them out of the user's home.
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


def _tiny(method: str) -> Any:
    """Untrained, seeded models of the methods without a bundled model."""
    import torch

    torch.manual_seed(0)
    if method == "n2v-3d":
        from abbe.restore.n2v import N2V, default_n2v_config

        cfg = default_n2v_config().updated(axes="ZYX", network={"dims": 3, "width": 4, "depth": 2})
        return N2V(cfg)
    if method == "dfcan":
        from abbe.restore.superres import SuperResolution, default_config

        return SuperResolution(
            default_config("dfcan").updated(network={"width": 4, "groups": 1, "blocks": 1})
        )
    if method == "deepstorm":
        from abbe.localize.deepstorm import DeepStorm, DeepStormConfig

        cfg = DeepStormConfig().updated(
            network={"width": 4, "depth": 2, "out_channels": 1}, upsampling=2
        )
        return DeepStorm(cfg)
    raise AssertionError(method)


def _model(name: str) -> Any:
    return models.load(name) if name in BUNDLED else _tiny(name)


def _image(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Blobs of several sizes on a background with shot noise (photons)."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    signal = np.zeros(shape, np.float32)
    for _ in range(8):
        centre = [rng.uniform(0, n) for n in shape]
        r2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
        signal += np.exp(-r2 / (2 * rng.uniform(1.5, 6) ** 2))
    return rng.poisson(100 * signal + 10).astype(np.float32)


def _abbe_reference(model: Any, raw: np.ndarray) -> np.ndarray:
    """abbe's own prediction of one image, in the package's output units (``(C, …)``)."""
    from abbe.data.normalize import percentile_range

    method = model.config.method
    if method in ("care", "n2v", "superres"):
        norm = model.config.normalization
        lo, hi = percentile_range(raw, norm.low, norm.high)
        pred = model.predict(raw, axes=model.config.axes, tile=None, warn=False)
        return ((pred - lo) / (hi - lo))[None]
    if method == "segment":
        return np.stack(model.predict_maps(raw, tile=None))
    if method == "classify":
        return model.predict_proba([raw])[0]
    if method == "deepstorm":
        return model.predict_density(raw[None], tile=None)[0][None]
    raise AssertionError(method)


def _package_input(model: Any, raw: np.ndarray) -> np.ndarray:
    """What a bioimage.io user gives: the raw image, except that Deep-STORM frames come with
    their median subtracted (documented: the spec has no median step)."""
    x = raw - np.median(raw) if model.config.method == "deepstorm" else raw
    return x[None, None].astype(np.float32)


def _shape(model: Any) -> tuple[int, ...]:
    """Not the traced 64² (the exported axes must be dynamic): 48×80, or 16×32×48."""
    info = model.export_info()
    if info.fixed_size:
        return (info.fixed_size,) * 2
    return (16, 32, 48) if info.spatial_axes == "ZYX" else (48, 80)


# ----------------------------------------------------------------------------- packages
@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Callable[[str], tuple[Any, Path]]:
    """``exported(name)``: the model and its bioimage.io zip, written once for this module."""
    folder = tmp_path_factory.mktemp("packages")
    cache: dict[str, tuple[Any, Path]] = {}

    def get(name: str) -> tuple[Any, Path]:
        if name not in cache:
            model = _model(name)
            cache[name] = (model, model.export(folder / f"{name}.zip", format="bioimageio"))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def packages(exported) -> dict[str, Path]:
    """Every bundled model's bioimage.io zip."""
    return {name: exported(name)[1] for name in BUNDLED}


def _extract(path: Path, name: str, folder: Path) -> Path:
    with zipfile.ZipFile(path) as z:
        return Path(z.extract(name, folder))


# ----------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("name", [*BUNDLED, "n2v-3d", "dfcan", "deepstorm"])
def test_packaged_onnx_and_torchscript_predict_what_abbe_predicts(name, exported, tmp_path):
    import onnxruntime as ort
    import torch

    model, package = exported(name)
    info = model.export_info()
    images = [_image(_shape(model), seed) for seed in (1, 2)]
    expected = np.stack([_abbe_reference(model, im) for im in images])
    # A batch of two different images: batch and spatial axes are both dynamic.
    x = preprocess(np.concatenate([_package_input(model, im) for im in images]), info)

    onnx_file = _extract(package, "weights.onnx", tmp_path)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    from_onnx = postprocess(session.run(None, {"input": x})[0], info)
    script = torch.jit.load(str(_extract(package, "weights_torchscript.pt", tmp_path)))
    with torch.no_grad():
        from_script = postprocess(script(torch.from_numpy(x)).numpy(), info)

    # Deep-STORM's density is the network's output over 100: compare in the network's units.
    unit = 1 / info.output_gain if info.output_gain and info.activation is None else 1.0
    assert from_onnx.shape == expected.shape
    assert np.abs(from_onnx - expected).max() * unit < ROUND_TRIP
    assert np.abs(from_script - expected).max() * unit < ROUND_TRIP
    # Not vacuous: the outputs vary over the image by far more than the tolerance.
    assert np.ptp(expected) * unit > 50 * ROUND_TRIP


# ----------------------------------------------------------------------------- import
TILE = 64  # 128² images: four tiles (cores 64², windows with the network's context)


def _tiled_reference(model: Any, raw: np.ndarray) -> np.ndarray:
    """abbe's own prediction of ``raw`` in the package's output units, tiled as the package
    is tiled (``TILE``): sr-widefield-2x's channel attention pools over the whole window, so
    its tiled result is not its untiled one (see the README) and tiles must match."""
    from abbe.data.normalize import percentile_range

    method = model.config.method
    if method == "superres" or method == "care" or method == "n2v":
        norm = model.config.normalization
        lo, hi = percentile_range(raw, norm.low, norm.high)
        pred = model.predict(raw, axes="YX", tile=TILE, warn=False)
        return ((pred - lo) / (hi - lo))[None]
    if method == "segment":
        return np.stack(model.predict_maps(raw, tile=TILE))
    if method == "deepstorm":
        return model.predict_density(raw[None], tile=TILE)[0][None]
    raise AssertionError(method)


@pytest.mark.parametrize("weights", ["torchscript", "onnx"])
@pytest.mark.parametrize(
    "name", ["denoise-widefield", "sr-widefield-2x", "nuclei-fluo", "deepstorm"]
)
def test_abbe_runs_its_own_packages_as_it_runs_the_models(name, weights, exported):
    # Issue 22: export, then import, predicts within 1e-4 (max abs, normalized units) of
    # abbe's own model, on an image of several tiles.
    from abbe.data.normalize import percentile_range

    model, package = exported(name)
    raw = _image((128, 128), seed=5)
    expected = _tiled_reference(model, raw)

    imported = models.load(package, weights=weights)
    got = imported.predict(_package_input(model, raw)[0, 0], axes="YX", tile=TILE)

    assert imported.weight_format == weights
    assert imported.tile_shape((128, 128), TILE) == (TILE, TILE)  # four tiles, not one
    got = got if got.ndim == 3 else got[None]
    if imported.denormalizes:  # restoration: photons, as abbe's model; compare normalized
        norm = model.config.normalization
        lo, hi = percentile_range(raw, norm.low, norm.high)
        got = (got - lo) / (hi - lo)
    info = model.export_info()
    unit = 1 / info.output_gain if info.output_gain and info.activation is None else 1.0
    assert got.shape == expected.shape  # ×2 along Y and X for sr-widefield-2x and Deep-STORM
    assert np.abs(got - expected).max() * unit < ROUND_TRIP
    assert np.ptp(expected) * unit > 50 * ROUND_TRIP


def test_a_short_last_tile_is_predicted_as_in_one_pass(packages):
    # 150×170 at tile 64: the last window of a row (46 px) is below the package's 64 px
    # minimum. Padded at its far end it differed from one pass by 5.0 photons; grown toward
    # the image's start it sees what the whole image shows there.
    from abbe.data.normalize import percentile_range

    raw = _image((150, 170), seed=9)
    imported = models.load(packages["denoise-widefield"], weights="onnx")

    tiled = imported.predict(raw, axes="YX", tile=TILE)
    whole = imported.predict(raw, axes="YX", tile=None)

    lo, hi = percentile_range(raw, 1.0, 99.8)
    assert np.abs(tiled - whole).max() / (hi - lo) < ROUND_TRIP


@pytest.mark.parametrize("weights", ["torchscript", "onnx"])
def test_the_classifier_package_gives_abbes_class_probabilities(weights, packages):
    # One crop per plane; crops not of the package's size are resized as abbe classify does.
    model = models.load("nuclei-shape")
    s = model.config.crop_size
    crops = np.stack([_image((s, s), seed) for seed in (1, 2, 3)] + [_image((s, s), 4)])
    crops[3] = crops[3][::-1]  # four different crops
    small = np.stack([_image((s // 2 + 3, s // 2 + 3), seed) for seed in (6, 7)])

    imported = models.load(packages["nuclei-shape"], weights=weights)
    got, got_small = imported.predict(crops, axes="SYX"), imported.predict(small, axes="SYX")

    assert imported.spec.kind == "classes" and imported.output_axes("SYX") == "SC"
    assert got.shape == (4, len(model.config.classes))
    assert np.abs(got - model.predict_proba(list(crops))).max() < ROUND_TRIP
    assert np.abs(got_small - model.predict_proba(list(small))).max() < ROUND_TRIP
    assert np.allclose(got.sum(axis=1), 1, atol=1e-5) and np.ptp(got) > 50 * ROUND_TRIP


def test_an_abbe_model_takes_no_weights_choice_and_a_package_names_what_it_lacks(packages):
    from abbe.errors import InputError

    with pytest.raises(ModelError, match=r"chooses the weights of a bioimage\.io package"):
        models.load("denoise-widefield", weights="onnx")
    with pytest.raises(InputError, match="abbe runs torchscript, onnx, pytorch_state_dict"):
        models.load(packages["denoise-widefield"], weights="keras_hdf5")


def test_restoration_packages_record_how_abbe_undoes_their_normalization(packages):
    abbe_cfg = _rdf(packages["denoise-widefield"])["config"]["abbe"]
    classifier = _rdf(packages["nuclei-shape"])["config"]["abbe"]

    norm = models.load("denoise-widefield").config.normalization
    assert abbe_cfg["output"] == "input-normalized"
    assert abbe_cfg["percentiles"] == [norm.low, norm.high]
    assert abbe_cfg["normalized_channels"] == ["restored"]
    assert "output" not in classifier  # probabilities stay as they are


def test_cli_restores_with_a_package_as_with_the_model(cli, packages, tmp_path):
    # abbe restore IN -m denoise-widefield.zip gives -m denoise-widefield's image (photons),
    # and says so; -m sr-widefield-2x.zip writes 2× the pixels at half the pixel size.
    from abbe import io

    raw = _image((96, 112), seed=8)
    io.write(tmp_path / "in.tif", raw, io.Meta("YX", pixel_size_nm=100.0))
    runs = {
        key: cli("restore", tmp_path / "in.tif", "-m", model, "-o", tmp_path / f"{key}.tif")
        for key, model in (
            ("own", "denoise-widefield"),
            ("pkg", packages["denoise-widefield"]),
            ("sr", packages["sr-widefield-2x"]),
        )
    }
    shape = cli(
        "restore", tmp_path / "in.tif", "-m", packages["nuclei-shape"], "-o", tmp_path / "x.tif"
    )

    assert all(r.code == 0 for r in runs.values()), {k: r.err for k, r in runs.items()}
    own, pkg = (np.asarray(io.read(tmp_path / f"{k}.tif")[0]) for k in ("own", "pkg"))
    assert np.abs(pkg - own).max() < 1e-4 * np.abs(own).max()
    assert "output in the input's units" in runs["pkg"].out
    sr, meta = io.read(tmp_path / "sr.tif")
    assert sr.shape == (192, 224) and meta.pixel_size_nm == pytest.approx(50.0)
    labels = cli(
        "segment", tmp_path / "in.tif", "-m", packages["nuclei-shape"], "-o", tmp_path / "l.tif"
    )
    for refused in (shape, labels):
        assert refused.code == 2 and "is a classifier package" in refused.err
        assert len(refused.err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- bioimage.io
def _client_test(path: Path, **options: Any) -> Any:
    """``bioimageio test`` through its Python API (offline: everything is in the zip)."""
    core = pytest.importorskip("bioimageio.core", reason="bioimageio.core cannot be imported")
    # The client calls gc.collect() about ten times per model; on pytest's heap each took
    # 0.5 s. Frozen objects are skipped by the collector: the same checks, 4× faster.
    gc.collect()
    gc.freeze()
    try:
        return core.test_description(str(path), **options)
    finally:
        gc.unfreeze()


def _failures(summary: Any) -> list[str]:
    return [
        f"{d.name}: {[e.msg[:200] for e in d.errors]}"
        for d in summary.details
        if d.status != "passed"
    ]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_packages_pass_the_bioimageio_client(name, packages):
    summary = _client_test(packages[name])

    assert summary.status == "passed", _failures(summary)
    tested = " ".join(d.name for d in summary.details)
    for fmt in ("torchscript", "onnx", "pytorch_state_dict"):
        assert f"Reproduce test outputs from test inputs ({fmt})" in tested


def test_deepstorm_package_passes_the_bioimageio_client(exported):
    # Fixed gain in; gain and clip out; a density grid 2× finer than the input.
    path = exported("deepstorm")[1]

    summary = _client_test(path, weight_format="torchscript")

    assert summary.status == "passed", _failures(summary)
    x, y = _npy(path, "test_input.npy"), _npy(path, "test_output.npy")
    assert y.shape[-2:] == (2 * x.shape[-2], 2 * x.shape[-1]) and y.min() >= 0


@pytest.mark.parametrize("name", ["n2v-3d", "dfcan"])
def test_untrained_packages_are_valid_descriptions(name, exported):
    # The format and file checks of the client (inference is checked by the round trip).
    spec = pytest.importorskip("bioimageio.spec", reason="bioimageio.spec cannot be imported")
    path = exported(name)[1]

    descr = spec.load_description(str(path), perform_io_checks=True)

    assert descr.validation_summary.status in ("passed", "valid-format"), descr.validation_summary
    axes = [a["id"] for a in _rdf(path)["inputs"][0]["axes"] if a["type"] == "space"]
    assert axes == (["z", "y", "x"] if name == "n2v-3d" else ["y", "x"])


def _rdf(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as z:
        return yaml.safe_load(z.read("rdf.yaml"))


def _npy(path: Path, name: str) -> np.ndarray:
    import io

    with zipfile.ZipFile(path) as z:
        return np.load(io.BytesIO(z.read(name)))


def test_super_resolution_package_says_scale_pixel_size_and_normalization(packages):
    path = packages["sr-widefield-2x"]
    rdf = _rdf(path)
    (inp,), (out,) = rdf["inputs"], rdf["outputs"]

    # Trained at 100 nm pixels, output at 50 nm: the output axes reference the input's size.
    space_in = {a["id"]: a for a in inp["axes"] if a["type"] == "space"}
    space_out = {a["id"]: a for a in out["axes"] if a["type"] == "space"}
    assert space_in["x"]["scale"] == 100 and space_in["x"]["unit"] == "nanometer"
    assert space_out["x"]["scale"] == 50
    assert space_out["y"]["size"] == {"tensor_id": "raw", "axis_id": "y"}
    # Tools that tile crop the network's reach (32 input pixels, 64 output pixels) per tile;
    # inputs hold at least twice that plus 16.
    assert space_out["x"]["halo"] == 64 and space_in["x"]["size"]["min"] >= 2 * 32 + 16
    (scale_range,) = [p for p in inp["preprocessing"] if p["id"] == "scale_range"]
    assert scale_range["kwargs"]["min_percentile"] == 0.5
    assert scale_range["kwargs"]["max_percentile"] == 99.9
    x, y = _npy(path, "test_input.npy"), _npy(path, "test_output.npy")
    assert y.shape == (*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3])
    assert set(rdf["weights"]) == {"torchscript", "onnx", "pytorch_state_dict"}
    assert rdf["weights"]["onnx"]["opset_version"] == 17


@pytest.mark.parametrize(("scale", "factor"), [(0.1, 2), (0.1, 1), (108.3, 4), (65.0, 2)])
def test_output_scales_give_whole_output_sizes(scale, factor):
    from abbe.models.export.bioimage_package import output_scale

    out = output_scale(scale, factor)

    # The spec's own rule; 81 · 0.1 / 0.05 was 161.99999999999997, i.e. 161 pixels.
    assert all(int(n * scale / out) == n * factor for n in range(1, 4097))
    assert out == pytest.approx(scale / factor, rel=1e-12)


def test_packages_carry_documentation_citations_and_cover(packages):
    from PIL import Image

    for name, path in packages.items():
        rdf = _rdf(path)
        with zipfile.ZipFile(path) as z:
            readme = z.read("README.md").decode()
            cover = Image.open(z.open(rdf["covers"][0]))
            cover.load()
        metrics = models.load(name).metrics
        # Its scores from the model folder: the number of training steps, at least.
        assert f"steps: {metrics['steps']}" in readme
        assert "## Training data" in readme and "## Limits" in readme
        assert all(c.get("doi") or c.get("url") for c in rdf["cite"])
        assert rdf["license"] == "BSD-3-Clause"
        assert cover.size[0] == 2 * cover.size[1]  # test input | output


def test_classifier_package_gives_calibrated_class_probabilities(packages):
    model = models.load("nuclei-shape")
    rdf = _rdf(packages["nuclei-shape"])
    (out,) = rdf["outputs"]

    channel = next(a for a in out["axes"] if a["type"] == "channel")
    assert channel["channel_names"] == list(model.config.classes)
    ids = [p["id"] for p in out["postprocessing"]]
    assert ids[:2] == ["scale_linear", "softmax"]
    gain = out["postprocessing"][0]["kwargs"]["gain"]
    assert gain == pytest.approx(1 / model.config.temperature)
    p = _npy(packages["nuclei-shape"], "test_output.npy")
    assert p.shape == (1, 3) and p.sum() == pytest.approx(1, abs=1e-5)


def test_the_learned_localizer_is_refused_as_a_package_in_one_line(tmp_path):
    from abbe.localize.learned import Localizer, LocalizerConfig

    model = Localizer(LocalizerConfig().updated(network={"width": 4, "depth": 2}))

    with pytest.raises(ModelError, match="cannot be exported: its output is a table"):
        model.export(tmp_path / "model.zip", format="bioimageio")
    assert not list(tmp_path.iterdir())
    # Its raw maps network stays exportable (the contract test checks TorchScript for all).
    assert model.export(tmp_path / "maps.onnx", format="onnx").is_file()


# ----------------------------------------------------------------------------- command line
def test_cli_exports_refuses_to_overwrite_and_names_bad_models(cli, tmp_path):
    import torch

    target = tmp_path / "shape.pt"

    done = cli("export", "nuclei-shape", "-o", target, "--format", "torchscript")
    again = cli("export", "nuclei-shape", "-o", target, "--format", "torchscript")
    replaced = cli("export", "nuclei-shape", "-o", target, "-f", "torchscript", "--overwrite")
    unknown = cli("export", "no-such-model", "-o", tmp_path / "x.zip")
    bad_format = cli("export", "nuclei-shape", "-o", tmp_path / "x.h5", "--format", "keras")

    assert done.code == 0, done.err
    assert again.code == 2 and "already exists; pass --overwrite" in again.err
    assert replaced.code == 0, replaced.err
    assert unknown.code == 2
    assert "no-such-model: is neither a bundled model" in unknown.err
    assert bad_format.code == 2 and "unknown --format 'keras'" in bad_format.err
    assert len(unknown.err.strip().splitlines()) == 1
    model = models.load("nuclei-shape")
    x = torch.from_numpy(model.example_input())
    with torch.no_grad():
        expected = model.network.eval()(x)
        got = torch.jit.load(str(target))(x)
    assert torch.allclose(got, expected, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shape.pt"]


def test_cli_exports_onnx_with_any_batch_and_size(cli, tmp_path):
    import onnxruntime as ort
    import torch

    model = models.load("denoise-widefield")
    x = np.random.default_rng(3).random((3, 1, 36, 52), dtype=np.float32)  # traced at 1×64²

    done = cli("export", "denoise-widefield", "-o", tmp_path / "denoise.onnx", "-f", "onnx")

    assert done.code == 0, done.err
    session = ort.InferenceSession(str(tmp_path / "denoise.onnx"))
    (got,) = session.run(None, {"input": x})
    with torch.no_grad():
        expected = model.network.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() < 1e-5


def test_cli_refuses_a_localizer_folder(cli, tmp_path):
    from abbe.localize.learned import Localizer, LocalizerConfig

    folder = Localizer(LocalizerConfig().updated(network={"width": 4, "depth": 2})).save(
        tmp_path / "loc"
    )

    result = cli("export", folder, "-o", tmp_path / "loc.zip")

    assert result.code == 2
    assert "a learned localizer cannot be exported" in result.err
    assert not (tmp_path / "loc.zip").exists()
