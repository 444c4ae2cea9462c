"""Classification: metrics with known values, object crops, a short training on simulated nuclei
shapes with calibration and saliency, save/load, and the command line."""

from __future__ import annotations

import numpy as np
import pytest

from abbe.errors import InputError


def test_metrics_known_values():
    from abbe.metrics.classification import (
        balanced_accuracy,
        confusion_matrix,
        expected_calibration_error,
        score_classes,
    )

    t = [0, 0, 0, 0, 1, 1]
    p = [0, 0, 0, 1, 1, 0]
    np.testing.assert_array_equal(confusion_matrix(t, p), [[3, 1], [1, 1]])
    assert balanced_accuracy(t, p) == pytest.approx((3 / 4 + 1 / 2) / 2)
    # Two bins: confidence 0.9 with 1 of 2 right (gap 0.4), 0.6 with 2 of 2 right (gap 0.4).
    prob = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    assert expected_calibration_error(prob, [0, 1, 1, 1]) == pytest.approx(0.4)
    s = score_classes(prob, [0, 1, 1, 1])
    assert s.accuracy == 0.75 and s.n == 4
    with pytest.raises(InputError):
        confusion_matrix([0, 1], [0])


def test_object_crops_centre_each_object():
    from abbe.classify import object_crops

    image = np.zeros((100, 120), np.float32)
    labels = np.zeros((100, 120), np.int32)
    labels[10:20, 10:30] = 1  # 10 × 20
    labels[60:90, 95:105] = 2  # 30 × 10, near the right border
    image[labels > 0] = 1.0
    crops = object_crops(image, labels, size=32, context=1.5)
    assert [c.label for c in crops] == [1, 2]
    for c in crops:
        assert c.crop.shape == (32, 32) and c.mask.shape == (32, 32)
        ys, xs = np.nonzero(c.mask)
        assert abs(ys.mean() - 15.5) < 2 and abs(xs.mean() - 15.5) < 2
        # The object's longer extent spans 1/1.5 of the crop.
        extent = max(np.ptp(ys), np.ptp(xs)) + 1
        assert extent == pytest.approx(32 / 1.5, abs=2)
    with pytest.raises(InputError):
        object_crops(image, labels[:50])


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from abbe.classify import Classifier, ClassifierConfig

    cfg = ClassifierConfig()
    cfg = cfg.model_copy(
        update={"training": cfg.training.model_copy(update={"max_time_s": None, "max_epochs": 6})}
    )
    clf = Classifier(cfg).fit_simulated(n_per_class=150, n_validation=40)
    folder = tmp_path_factory.mktemp("clf") / "model"
    clf.save(folder)
    return clf, folder


@pytest.mark.xdist_group("classifier")
def test_short_training_separates_nucleus_shapes(classifier):
    """300 steps of training: ≥ 90 % balanced accuracy on unseen simulated nuclei; temperature
    scaling does not worsen the held-out negative log-likelihood; probabilities sum to 1."""
    from abbe.classify import simulated_crops
    from abbe.metrics.classification import score_classes

    clf, _ = classifier
    crops, names, _ = simulated_crops(clf.config, 60, seed=4242)
    prob = clf.predict_proba(crops)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-6)
    y = clf._class_index(names)
    scores = score_classes(prob, y)
    assert scores.balanced_accuracy >= 0.9, scores
    cal = clf.metrics["calibration"]
    assert cal["ece_after"] <= cal["ece_before"] + 0.01
    raw = np.exp(clf.logits(crops) - clf.logits(crops).max(axis=1, keepdims=True))
    raw /= raw.sum(axis=1, keepdims=True)
    nll = lambda p: -np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))  # noqa: E731
    assert nll(prob) <= nll(raw) + 0.02
    maps = clf.saliency(crops[:6])
    assert maps.shape == (6, 64, 64) and maps.min() >= 0 and maps.max() <= 1 + 1e-6


@pytest.mark.xdist_group("classifier")
def test_saliency_falls_on_held_out_objects(classifier):
    """Trained with the evidence-on-object penalty, ≥ 80 % of the Grad-CAM mass of unseen
    crops lies inside the object's mask, for every class."""
    from abbe.classify import saliency_inside, simulated_crops

    clf, _ = classifier
    crops, names, masks = simulated_crops(clf.config, 30, seed=5151)
    inside = saliency_inside(clf.saliency(crops), masks)
    for k in clf.config.classes:
        sel = np.array(names) == k
        assert inside[sel].mean() >= 0.8, (k, inside[sel].mean())


@pytest.mark.xdist_group("classifier")
def test_saliency_follows_the_object(classifier):
    """Grad-CAM is a map of the evidence: on round nuclei (whose evidence is the nucleus
    itself) moving the object within its crop moves the map's centre of mass with it."""
    from scipy import ndimage

    from abbe.classify import object_crops
    from abbe.simulate.cells import nucleus_field

    clf, _ = classifier
    moves = []
    for seed in range(4):
        f = nucleus_field("round", seed=seed)
        (c,) = object_crops(f.image, f.mask.astype(np.int32), size=64)
        shifted = ndimage.shift(c.crop, (8, -8), mode="nearest")
        a, b = clf.saliency([c.crop, shifted])
        ca, cb = ndimage.center_of_mass(a), ndimage.center_of_mass(b)
        moves.append((cb[0] - ca[0], cb[1] - ca[1]))
    dy, dx = np.median(moves, axis=0)
    assert dy == pytest.approx(8, abs=3) and dx == pytest.approx(-8, abs=3), moves


@pytest.mark.xdist_group("classifier")
def test_save_load_and_cli(classifier, tmp_path, cli):
    from abbe import io, models
    from abbe.classify import Classifier
    from abbe.simulate.cells import nucleus_field

    clf, folder = classifier
    loaded = models.load(folder)
    assert isinstance(loaded, Classifier) and loaded.config.temperature == clf.config.temperature
    fields = [nucleus_field(k, size=80, seed=s) for s, k in enumerate(["round", "elongated"])]
    np.testing.assert_allclose(
        loaded.predict_proba([f.image for f in fields]),
        clf.predict_proba([f.image for f in fields]),
        atol=1e-6,
    )
    # Two objects side by side in one labelled image.
    image = np.concatenate([fields[0].image, fields[1].image], axis=1)
    labels = np.concatenate([fields[0].mask * 1, fields[1].mask * 2], axis=1).astype(np.int32)
    io.write(tmp_path / "img.tif", image, axes="YX")
    io.write(tmp_path / "lab.tif", labels.astype(np.uint16), axes="YX")
    table = tmp_path / "t.csv"
    r = cli(
        "classify",
        tmp_path / "img.tif",
        "-m",
        folder,
        "-o",
        table,
        "--labels",
        tmp_path / "lab.tif",
        "--saliency",
        tmp_path / "sal",
        "-q",
    )
    assert r.code == 0, r
    import pandas as pd

    df = pd.read_csv(table)
    assert list(df["object"]) == [1, 2]
    assert list(df["class"]) == ["round", "elongated"]
    assert {"p_round", "p_elongated", "p_fragmented", "saliency_inside_object"} <= set(df.columns)
    sal, _ = io.read(tmp_path / "sal" / "img_saliency.tif")
    assert sal.shape == image.shape
    again = cli("classify", tmp_path / "img.tif", "-m", folder, "-o", table)
    assert again.code != 0 and "--overwrite" in again.err
    bad = cli("classify", tmp_path / "img.tif", "-m", "sr-widefield-2x", "-o", tmp_path / "x.csv")
    assert bad.code != 0 and "not a classifier" in bad.err


def test_cli_train_from_a_table(tmp_path, cli):
    from abbe import io
    from abbe.simulate.cells import nucleus_field

    rows = ["file,class"]
    for s in range(12):
        kind = ["round", "elongated"][s % 2]
        io.write(tmp_path / f"n{s}.tif", nucleus_field(kind, size=64, seed=s).image, axes="YX")
        rows.append(f"n{s}.tif,{kind}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    r = cli(
        "train",
        "classify",
        "--table",
        tmp_path / "train.csv",
        "-o",
        tmp_path / "m",
        "--max-time",
        "3",
        "-q",
    )
    assert r.code == 0, r
    from abbe import models

    assert models.load(tmp_path / "m").config.classes == ("round", "elongated")
    (tmp_path / "bad.csv").write_text("file,class\nmissing.tif,round\n")
    r = cli("train", "classify", "--table", tmp_path / "bad.csv", "-o", tmp_path / "m2")
    assert r.code != 0 and "missing.tif" in r.err


def test_bundled_shape_classifier_on_segmented_nuclei(tmp_path, cli):
    """nuclei-shape, the default of abbe classify: simulated nuclei of known class, one label
    each, classified right (≥ 14 of 15), its saliency on the objects."""
    from abbe import io, models
    from abbe.simulate.cells import NUCLEUS_CLASSES, nucleus_field

    model = models.load("nuclei-shape")
    assert model.config.classes == NUCLEUS_CLASSES
    fields = [nucleus_field(k, size=96, seed=900 + i) for i in range(5) for k in NUCLEUS_CLASSES]
    image = np.concatenate([f.image for f in fields], axis=1)
    labels = np.concatenate([f.mask * (i + 1) for i, f in enumerate(fields)], axis=1)
    io.write(tmp_path / "img.tif", image, axes="YX")
    io.write(tmp_path / "lab.tif", labels.astype(np.uint16), axes="YX")
    r = cli(
        "classify",
        tmp_path / "img.tif",
        "--labels",
        tmp_path / "lab.tif",
        "-o",
        tmp_path / "t.csv",
        "--saliency",
        tmp_path / "sal",
        "-q",
    )
    assert r.code == 0, r
    import pandas as pd

    df = pd.read_csv(tmp_path / "t.csv").sort_values("object")
    assert (df["class"].to_numpy() == np.array([f.kind for f in fields])).sum() >= 14
    assert df["saliency_inside_object"].mean() >= 0.8


def test_object_crops_replace_other_objects_by_background():
    # Object 1 (value 100) touches object 2 (value 500) on a background of 10 ± 1: where
    # object 2 lies in object 1's crop there is background; without isolation object 2 is
    # in the crop.
    from abbe.classify import object_crops

    rng = np.random.default_rng(0)
    image = rng.normal(10, 1, (80, 80)).astype(np.float32)
    labels = np.zeros((80, 80), np.int32)
    labels[30:50, 20:40] = 1
    labels[30:50, 40:60] = 2
    image[labels == 1] = 100
    image[labels == 2] = 500
    alone = object_crops(image, labels, size=32)[0]
    crowded = object_crops(image, labels, size=32, isolate=False)[0]
    assert alone.size_px == 20 and alone.label == 1
    from abbe.classify.model import _resize, _window

    where_2 = _resize(_window((labels == 2).astype(np.float32), alone.box), 32, 1) > 0.99
    assert where_2.sum() >= 20 and alone.crop[where_2].max() < 20  # background there
    assert alone.crop.max() <= 100 + 1e-3
    assert crowded.crop.max() > 400
    again = object_crops(image, labels, size=32)[0]
    np.testing.assert_array_equal(alone.crop, again.crop)  # seeded: the same crop each time


def test_round_nuclei_among_neighbours_are_not_called_fragmented():
    """Issue 28, finding 11: the bundled classifier called round nuclei 'fragmented' with
    its saliency outside the object: crops of crowded widefield nuclei held their neighbours,
    which training crops never do. On 53 simulated nuclei (200 nm pixels, 52 of the
    training size), cropping each object alone leaves at most 1 called 'fragmented' (the
    error rate of in-range simulations, 2–5 %); with the neighbours left in, 4 are, 3 of them
    with most of their saliency outside the object."""
    from abbe import models, simulate
    from abbe.classify import object_crops, saliency_inside

    clf = models.load("nuclei-shape")
    sim = simulate.widefield("nuclei", size=384, pixel_size_nm=200, seed=0)
    fragmented = {}
    for isolate in (True, False):
        crops = object_crops(sim.input, sim.labels, isolate=isolate)
        ok = clf.check_sizes([c.size_px for c in crops], warn=False)
        called = clf.predict_proba([c.crop for c in crops]).argmax(axis=1) == 2
        inside = saliency_inside(clf.saliency([c.crop for c in crops]), [c.mask for c in crops])
        fragmented[isolate] = (int((called & ok).sum()), int((called & (inside < 0.5)).sum()))
    assert ok.sum() >= 50
    assert fragmented[True][0] <= 1 and fragmented[True][1] == 0
    assert fragmented[False][0] >= 3 and fragmented[False][1] >= 2  # the finding, reproduced


def test_objects_smaller_than_the_training_objects_are_flagged(tmp_path, cli):
    """Round nuclei 10–22 px across (widefield nuclei, 400 nm pixels) are smaller than any
    elongated training nucleus (23 px): abbe classify warns and marks them
    in_training_range false; every 'fragmented' call is among them (all these nuclei are
    round or nearly)."""
    import pandas as pd

    from abbe import models

    r = cli(
        "simulate",
        "widefield",
        "--structure",
        "nuclei",
        "--size",
        "192",
        "--pixel-size",
        "400",
        "--seed",
        "0",
        "-o",
        tmp_path / "sim",
        "-q",
    )
    assert r.code == 0, r
    r = cli(
        "classify",
        tmp_path / "sim" / "input.tif",
        "--labels",
        tmp_path / "sim" / "labels.tif",
        "-o",
        tmp_path / "t.csv",
    )
    assert r.code == 0, r
    assert "warning:" in r.err and "smaller than the model's training objects" in r.err
    df = pd.read_csv(tmp_path / "t.csv")
    smallest = models.load("nuclei-shape").smallest_size_px()
    assert smallest == 23
    np.testing.assert_array_equal(df["in_training_range"], df["size_px"] >= smallest)
    assert (~df["in_training_range"]).sum() >= 10
    assert not df.loc[df["class"] == "fragmented", "in_training_range"].any()
    with pytest.warns(UserWarning, match="smaller than"):
        models.load("nuclei-shape").check_sizes([30, 12])
