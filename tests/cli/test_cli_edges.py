"""The command line's rough edges (issue 28, findings 5, 6, 8, 9, 11): outputs checked before the
work, Ctrl-C and --resume, no empty model folders, guessed axes said aloud, channel numbers,
restore of a folder, the bare command, readable model scores."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import yaml

from abbe import io

# Everything that reads, loads or computes: none of it may run when an output is refused.
WORK = [
    ("abbe.io", "read"),
    ("abbe.io", "read_images"),
    ("abbe.io", "read_plane"),
    ("abbe.io", "read_label_pairs"),
    ("abbe.models", "load"),
    ("abbe.segment.Segmenter", "load"),
    ("abbe.simulate", "widefield"),
    ("abbe.simulate.smlm", "smlm"),
    ("abbe.simulate.superres", "sr_pair"),
    ("abbe.data.samples", "sample"),
    ("abbe.localize.matching", "match_config"),
    ("abbe.train.engine", "fit"),
]


@pytest.fixture
def no_work(monkeypatch):
    def started(*args, **kwargs):
        raise AssertionError("work started before the output check")

    for owner, name in WORK:
        monkeypatch.setattr(f"{owner}.{name}", started)


def _existing(tmp_path):
    """An input image, and outputs that already exist where each verb will write."""
    image = tmp_path / "in.tif"
    io.write(image, np.ones((3, 32, 32), np.float32), io.Meta("TYX", pixel_size_nm=100.0))
    for name in ("out.tif", "out.csv", "out.json", "out.png", "locs.yaml"):
        (tmp_path / name).write_text("kept")
    for folder, name in (
        ("report", "report.json"),
        ("demo", "metrics.json"),
        ("wf", "params.json"),
        ("sr", "params.json"),
        ("smlm", "stack.tif"),
        ("model", "weights.safetensors"),
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text("kept")
    return image


VERBS = {
    "restore": ["restore", "{in}", "-m", "denoise-widefield", "-o", "{d}/out.tif"],
    "localize": ["localize", "{in}", "-o", "{d}/out.csv"],
    "localize hdf5": ["localize", "{in}", "-o", "{d}/locs.hdf5"],  # its YAML exists
    "calibrate": ["calibrate", "{in}", "-o", "{d}/out.json", "--offset", "100"],
    "segment": ["segment", "{in}", "-o", "{d}/out.tif"],
    "classify": ["classify", "{in}", "-o", "{d}/out.csv"],
    "resolution": ["resolution", "{in}", "-o", "{d}/out.png"],
    "verify": ["verify", "{in}", "-i", "{in}", "-o", "{d}/report"],
    "demo": ["demo", "-o", "{d}/demo"],
    "simulate widefield": ["simulate", "widefield", "-o", "{d}/wf"],
    "simulate superres": ["simulate", "superres", "-o", "{d}/sr"],
    "simulate smlm": ["simulate", "smlm", "-o", "{d}/smlm"],
    "train care": ["train", "care", "-i", "{in}", "-t", "{in}", "-o", "{d}/model"],
    "train n2v": ["train", "n2v", "-i", "{in}", "-o", "{d}/model"],
    "train localizer": ["train", "localizer", "--stack", "{in}", "-o", "{d}/model"],
    "train deepstorm": ["train", "deepstorm", "--stack", "{in}", "-o", "{d}/model"],
    "train segment": ["train", "segment", "-o", "{d}/model"],
    "train classify": ["train", "classify", "-o", "{d}/model"],
    "train dfcan": ["train", "dfcan", "-o", "{d}/model"],
}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_refuses_an_existing_output_before_any_work(verb, cli, tmp_path, no_work):
    image = _existing(tmp_path)
    args = [a.format(d=tmp_path, **{"in": image}) for a in VERBS[verb]]
    result = cli(*args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert "already" in lines[0] and "--overwrite" in lines[0]
    assert "work started" not in result.err


def test_ctrl_c_in_a_verb_prints_one_line_and_exits_130(cli, tmp_path, monkeypatch):
    image = _existing(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("abbe.io.read", interrupted)
    result = cli("calibrate", image, "-o", tmp_path / "new.json", "--offset", "100")
    assert result.code == 130
    lines = result.err.strip().splitlines()
    assert lines == ["error: interrupted; nothing was written"]
    assert not (tmp_path / "new.json").exists()


# ------------------------------------------------------------------------------ Ctrl-C in training
TINY = {
    "network": {"width": 8, "depth": 2},
    "training": {
        "patch_size": 32,
        "batch_size": 4,
        "steps_per_epoch": 4,
        "max_epochs": 3,
        "validation_batches": 1,
        "warmup_steps": 1,
        "threads": 1,
    },
}


@pytest.fixture
def noisy_folder(tmp_path, filament_pairs):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, img in enumerate(filament_pairs[0][:3]):
        io.write(folder / f"{i}.tif", img, io.Meta("YX", pixel_size_nm=100.0))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    return folder, cfg


def _interrupt_at(monkeypatch, step: int) -> None:
    """Ctrl-C inside the training step ``step`` (mid-epoch), where a real one mostly lands."""
    from lightning.pytorch.callbacks import Callback

    from abbe.train import engine

    class CtrlC(Callback):
        def on_before_backward(self, trainer, module, loss):
            if trainer.global_step == step:
                raise KeyboardInterrupt

    original = engine.fit

    def fit(*args, **kwargs):
        kwargs["extra_callbacks"] = [*(kwargs.get("extra_callbacks") or []), CtrlC()]
        return original(*args, **kwargs)

    monkeypatch.setattr(engine, "fit", fit)


def test_ctrl_c_during_training_leaves_a_checkpoint_that_resumes_exactly(
    cli, tmp_path, noisy_folder, monkeypatch
):
    folder, cfg = noisy_folder
    common = ("train", "n2v", "-i", folder, "--config", cfg, "-q")
    assert cli(*common, "-o", tmp_path / "ref").code == 0

    with monkeypatch.context() as patch:
        _interrupt_at(patch, step=6)  # epoch 1 of 3, two batches into it
        stopped = cli(*common, "-o", tmp_path / "run")
    assert stopped.code == 130, stopped
    lines = stopped.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'run'}: "), stopped.err
    assert "interrupted after 6 steps" in lines[0] and "--resume" in lines[0]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    assert not (tmp_path / "run" / "weights.safetensors").exists()

    resumed = cli(*common, "-o", tmp_path / "run", "--resume")
    assert resumed.code == 0, resumed
    from safetensors.numpy import load_file

    ref = load_file(tmp_path / "ref" / "weights.safetensors")
    run = load_file(tmp_path / "run" / "weights.safetensors")
    # The resumed epoch continues with the batches not yet seen: the same weights as without
    # the interruption (same operations in the same order; 1e-6 allows for nothing more).
    for key in ref:
        np.testing.assert_allclose(run[key], ref[key], rtol=0, atol=1e-6)


def test_a_failed_training_leaves_no_empty_model_folder(cli, tmp_path, noisy_folder):
    folder, _ = noisy_folder
    cfg = tmp_path / "big.yaml"
    # Patches larger than the 96² images: refused once training starts to cut patches.
    cfg.write_text(yaml.safe_dump({**TINY, "training": {**TINY["training"], "patch_size": 512}}))
    result = cli("train", "n2v", "-i", folder, "--config", cfg, "-o", tmp_path / "m", "-q")
    assert result.code == 2, result
    assert not (tmp_path / "m").exists()


def test_resume_without_a_checkpoint_is_refused_before_reading(cli, tmp_path, no_work):
    image = _existing(tmp_path)
    result = cli("train", "n2v", "-i", image, "-o", tmp_path / "empty", "--resume")
    assert result.code == 2 and "no checkpoint to resume from" in result.err
    assert "work started" not in result.err


# ------------------------------------------------------------------------------ axes and channels
def test_a_stack_without_axes_is_read_as_time_and_the_guess_is_printed(cli, tmp_path):
    path = tmp_path / "f.tif"
    rng = np.random.default_rng(0)
    frames = rng.poisson(20, (6, 64, 64)).astype(np.float32)
    tifffile.imwrite(path, frames, photometric="minisblack")  # planes, nothing says of what
    result = cli("resolution", path, "--pixel-size", "100", "--json")
    assert result.code == 0, result
    assert (
        f"warning: {path}: no axes in the file; read as TYX (time); "
        "pass --axes ZYX if these are z planes"
    ) in result.err
    # Told what they are, abbe does not guess (and does not warn about axes; pure noise still
    # gets resolution's own warning that no structure rises above it).
    told = cli("resolution", path, "--pixel-size", "100", "--json", "--axes", "TYX")
    assert told.code == 0 and "no axes" not in told.err and "read as TYX" not in told.err


def test_a_channel_past_the_last_says_how_channels_are_numbered(cli, tmp_path):
    path = tmp_path / "rgb.tif"
    io.write(path, np.ones((3, 64, 64), np.float32), io.Meta("CYX"))
    result = cli("segment", path, "--channel", "3", "-o", tmp_path / "l.tif")
    assert result.code == 2
    assert "--channel 3: channels are numbered 0–2; the image has 3" in result.err
    assert not (tmp_path / "l.tif").exists()


# ------------------------------------------------------------------------------ restore, bare abbe
def test_restore_takes_a_folder_like_segment_and_classify(cli, tmp_path, filament_pairs):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, img in enumerate(filament_pairs[0][:2]):
        io.write(folder / f"im{i}.tif", img[:64, :64], io.Meta("YX", pixel_size_nm=100.0))
    result = cli("restore", folder, "-m", "denoise-widefield", "-o", tmp_path / "out", "-q")
    assert result.code == 0, result
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["im0.tif", "im1.tif"]
    restored, meta = io.read(tmp_path / "out" / "im1.tif")
    assert restored.shape == (64, 64) and meta.pixel_size_nm == pytest.approx(100.0)
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = cli("restore", empty, "-m", "denoise-widefield", "-o", tmp_path / "o2")
    assert refused.code == 2 and "no images" in refused.err


@pytest.mark.parametrize("args", [(), ("train",), ("simulate",)])
def test_a_bare_command_prints_its_help_without_an_error(cli, args):
    result = cli(*args)
    assert result.code == 0, result
    assert result.out.startswith("Usage: abbe") and "Commands:" in result.out
    assert result.err == ""


def test_models_prints_readable_score_names(cli):
    result = cli("models")
    assert result.code == 0
    for raw in ("ssim_filaments_100ph", "simulated_ap50_mean", "balanced_accuracy"):
        assert raw not in result.out
    assert "validation, SSIM: model / bilinear" in result.out
    assert "mean AP@0.5 on simulated images" in result.out


def test_a_warning_about_another_file_names_that_file(capsys):
    import warnings

    from abbe.cli.common import reported_warnings
    from abbe.errors import AbbeWarning

    with reported_warnings("result.tif") as caveats:
        warnings.warn("doubtful", AbbeWarning, stacklevel=1)
        warnings.warn(AbbeWarning("axes guessed", "truth.tif"), stacklevel=1)
    assert caveats == ["doubtful", "truth.tif: axes guessed"]
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: result.tif: doubtful", "warning: truth.tif: axes guessed"]
