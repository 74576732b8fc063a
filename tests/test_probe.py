"""Frozen-feature probes against independent references: DINOv2's weighted k-NN vote written out here, and
scikit-learn's LogisticRegression; then ``vitzoo probe`` end to end, with its embedding cache."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from sklearn.linear_model import LogisticRegression

import vitzoo
import vitzoo.factory
from conftest import cli, one_line_error, randomize_
from vitzoo.eval import probe_job as probe_run
from vitzoo.eval import probes as probe
from vitzoo.features.labelled import label_lookup, read_labelled

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module


def blobs(n: int, classes: int, dim: int, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping Gaussian classes: a probe reaches neither chance nor 100%, so a wrong vote or fit shows."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * spread
    y = torch.randint(0, classes, (n,), generator=gen)
    return centres[y] + torch.randn(n, dim, generator=gen), y


def dinov2_knn_reference(train_x, train_y, test_x, test_y, ks, temperature):
    """DINOv2's eval/knn.py in one piece, without chunks: L2-normalised features, cosine similarity to every training
    feature, the max(k) most similar, votes exp(sim / T) on their one-hot labels, class scores of the first k summed.
    (DINOv2 divides the weights by their sum, a softmax: the same ranking.) Top-1 / top-5 as torchmetrics counts."""
    train = F.normalize(train_x.double(), dim=1)
    test = F.normalize(test_x.double(), dim=1)
    sims, idx = (test @ train.T).topk(max(ks), dim=1)
    num_classes = int(train_y.max()) + 1
    out = {}
    for k in ks:
        weights = (sims[:, :k] / temperature).exp()
        scores = (F.one_hot(train_y[idx[:, :k]], num_classes).double() * weights[..., None]).sum(dim=1)
        top5 = scores.topk(5, dim=1).indices
        out[k] = {
            "top1": (top5[:, 0] == test_y).double().mean().item(),
            "top5": (top5 == test_y[:, None]).any(dim=1).double().mean().item(),
        }
    return out


def test_knn_equals_the_dinov2_vote_across_chunks():
    train_x, train_y = blobs(900, 8, 24, 0.35, seed=0)
    test_x, test_y = blobs(300, 8, 24, 0.35, seed=1)
    ref = dinov2_knn_reference(train_x, train_y, test_x, test_y, (10, 20, 100, 200), 0.07)
    # Odd chunk sizes: many train chunks (fewer rows than k=200 in each) and query batches with a ragged end.
    got = vitzoo.knn_eval(train_x, train_y, test_x, test_y, chunk_size=97, batch_size=71)
    assert got == ref
    assert 0.3 < ref[20]["top1"] < 0.95  # neither chance (0.125) nor solved: the vote is what is measured
    sharp = vitzoo.knn_eval(train_x, train_y, test_x, test_y, k=(20, 100), temperature=0.01, chunk_size=97)
    assert sharp == dinov2_knn_reference(train_x, train_y, test_x, test_y, (20, 100), 0.01)
    # Labels are names, not positions: any integers give the same result; unseen test labels count as errors.
    shifted = vitzoo.knn_eval(train_x, train_y * 7 - 3, test_x, test_y * 7 - 3, k=(20,), chunk_size=97)
    assert shifted[20] == ref[20]
    unseen = test_y.clone()
    unseen[:30] = 99
    got = vitzoo.knn_eval(train_x, train_y, test_x, unseen, k=(20,))
    assert got == dinov2_knn_reference(train_x, train_y, test_x, unseen, (20,), 0.07)
    assert got[20]["top1"] < ref[20]["top1"]


def test_knn_never_builds_more_than_one_similarity_block(monkeypatch):
    train_x, train_y = blobs(1000, 4, 16, 0.5, seed=0)
    test_x, test_y = blobs(130, 4, 16, 0.5, seed=1)
    shapes = []
    mm = torch.mm

    def recording(a, b):
        shapes.append((a.shape[0], b.shape[1]))
        return mm(a, b)

    monkeypatch.setattr(torch, "mm", recording)
    vitzoo.knn_eval(train_x, train_y, test_x, test_y, k=(10,), chunk_size=256, batch_size=64)
    assert max(shapes) == (64, 256) and len(shapes) == 3 * 4  # 3 query batches x 4 train chunks


@pytest.mark.parametrize("C", [0.01, 1.0])
def test_linear_probe_matches_scikit_learn_at_the_same_C(C):
    train_x, train_y = blobs(600, 6, 32, 0.3, seed=0)
    test_x, test_y = blobs(1000, 6, 32, 0.3, seed=1)
    sk = LogisticRegression(C=C, max_iter=1000).fit(train_x.numpy(), train_y.numpy())
    expected = float((sk.predict(test_x.numpy()) == test_y.numpy()).mean())
    got = vitzoo.linear_probe(train_x, train_y, test_x, test_y, C=C)
    assert got.C == C and got.val_accuracy == {}
    assert 0.4 < expected < 0.95
    assert abs(got.accuracy - expected) <= 0.005, (got.accuracy, expected)
    if C <= 0.01:  # strongly regularised, both solvers converge: the same objective has the same minimiser
        weight, bias = probe.fit_logistic(train_x, train_y, 6, C)
        scale = np.abs(sk.coef_).max()
        assert np.abs(weight.T.numpy() - sk.coef_).max() <= 1e-2 * scale
        assert np.abs(bias.numpy() - sk.intercept_).max() <= 1e-2 * max(scale, np.abs(sk.intercept_).max())


def test_small_fits_run_on_one_thread_and_leave_the_setting_as_it_was(monkeypatch):
    """Hundreds of tiny L-BFGS matmuls lose to threads waiting on each other (281 s on a busy 2-core machine against
    15 s on one thread): a small sweep runs each fit on one thread; a large one keeps torch's setting."""
    seen = []
    fit = probe.fit_logistic

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return fit(*args, **kwargs)

    monkeypatch.setattr(probe, "fit_logistic", recording)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_x, train_y = blobs(24, 3, 8, 0.25, seed=0)
        vitzoo.linear_probe(train_x, train_y, train_x, train_y, max_iter=20)
        assert len(seen) > 7 and set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        monkeypatch.setattr(probe, "SMALL_FIT", 10)  # the same fit counted as large
        vitzoo.linear_probe(train_x, train_y, train_x, train_y, C=1.0)
        assert seen == [2]
    finally:
        torch.set_num_threads(threads)


def test_linear_probe_sweep_follows_clips_search():
    train_x, train_y = blobs(150, 3, 64, 0.25, seed=0)  # few rows, many dims: the penalty matters
    test_x, test_y = blobs(300, 3, 64, 0.25, seed=1)
    got = vitzoo.linear_probe(train_x, train_y, test_x, test_y)
    exponents = sorted(math.log10(c) for c in got.val_accuracy)
    assert {-6, -4, -2, 0, 2, 4, 6} <= {round(e, 6) for e in exponents}  # the first, coarse sweep
    assert len(exponents) <= 7 + 2 * 4  # then two neighbours per halving: 2 -> 1 -> 1/2 -> 1/4 -> 1/8 decades
    best = max(got.val_accuracy.values())
    assert got.val_accuracy[got.C] == best  # the chosen C is a best one on validation...
    assert min(c for c, acc in got.val_accuracy.items() if acc == best) == got.C  # ...the most regularised of those
    assert abs(math.log10(got.C) * 8 - round(math.log10(got.C) * 8)) < 1e-9  # on the 8-per-decade grid
    refit = vitzoo.linear_probe(train_x, train_y, test_x, test_y, C=got.C)
    assert refit.accuracy == got.accuracy  # the final model is the refit on the whole training set at that C


def test_probe_inputs_refuse_mismatches():
    x, y = blobs(20, 2, 4, 1.0, seed=0)
    with pytest.raises(vitzoo.ConfigError, match="20 feature rows but 19 labels"):
        vitzoo.knn_eval(x, y[:19], x, y)
    with pytest.raises(vitzoo.ConfigError, match="temperature"):
        vitzoo.knn_eval(x, y, x, y, temperature=0)
    with pytest.raises(vitzoo.ConfigError, match="matrix"):
        vitzoo.linear_probe(x[0], y, x, y)


# ------------------------------------------------------------------------------------------ vitzoo probe
COLOURS = {"red_square": (220, 30, 30), "green_disc": (30, 200, 40), "blue_bar": (30, 40, 220)}


def draw(kind: str, rng: np.random.Generator) -> Image.Image:
    """The class's colour (jittered) over the frame, and a grey shape (square, disc or bar) at a random place."""
    colour = np.clip(np.array(COLOURS[kind]) + rng.integers(-25, 26, 3), 0, 255)
    img = Image.new("RGB", (48, 48), tuple(int(v) for v in colour))
    pen = ImageDraw.Draw(img)
    size = int(rng.integers(14, 24))
    x0, y0 = (int(v) for v in rng.integers(0, 48 - size, 2))
    grey = (int(rng.integers(60, 200)),) * 3
    if kind == "red_square":
        pen.rectangle((x0, y0, x0 + size, y0 + size), fill=grey)
    elif kind == "green_disc":
        pen.ellipse((x0, y0, x0 + size, y0 + size), fill=grey)
    else:
        pen.rectangle((x0, y0, x0 + size, y0 + size // 3), fill=grey)
    return img


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 4)):
        for kind in COLOURS:
            (root / split / kind).mkdir(parents=True)
            for i in range(count):
                draw(kind, rng).save(root / split / kind / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    names = []
    for i, depth in enumerate((2, 3)):
        torch.manual_seed(i)
        model = vitzoo.create_model("vit_tiny_patch16_224", depth=depth, img_size=32, num_classes=0)
        names.append(f"local-dir:{vitzoo.save_pretrained(randomize_(model, seed=i), root / f'm{i}')}")
    return names


def table_rows(stdout: str) -> list[list[str]]:
    lines = stdout.strip().splitlines()
    return [line.split() for line in lines[1:]]


def test_probe_command_prints_every_model_layer_and_pool_and_reuses_its_cache(
    dataset, two_models, tmp_path, monkeypatch
):
    args = [
        "probe",
        *two_models,
        "--train",
        dataset / "train",
        "--test",
        dataset / "test",
        "--layers",
        "0",
        "-1",
        "--pool",
        "token",
        "avg",
        "--k",
        "5",
        "10",
        "--shots",
        "1",
        "5",
        "10",
        "--workers",
        "0",
        "--out",
        tmp_path / "out",
    ]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    header = first.stdout.splitlines()[0].split()
    metrics = ["k-NN@5", "k-NN@10", "linear", "C", "1-shot", "5-shot", "10-shot"]
    assert header == ["model", "layer", "pool", "train", "test", *metrics]
    rows = table_rows(first.stdout)
    m0, m1 = two_models
    assert [r[:3] for r in rows] == [
        [m, layer, pool] for m, last in ((m0, "1"), (m1, "2")) for pool in ("token", "avg") for layer in ("0", last)
    ]
    assert all(r[3:5] == ["18", "12"] and r[-1] == "-" for r in rows)  # 10 shots: more than 6 images per class
    # The classes differ in colour over the whole frame: even random weights separate them (chance: 33.3), so a
    # feature row paired with another image's label would show here.
    assert all(r[5:8] == ["100.0"] * 3 and r[9:11] == ["100.0"] * 2 for r in rows)
    assert first.stderr.count("embedding 18 images") == 4 and "cached in" not in first.stderr

    # Second run: every embedding comes from the cache; no model is built and no forward runs.
    def no_forward(*a, **k):
        raise AssertionError("a forward ran on the second run")

    monkeypatch.setattr(vitzoo.models.vit.VisionTransformer, "_embed", no_forward)
    monkeypatch.setattr(vitzoo.factory, "create_model", no_forward)
    second = cli(*args)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert second.stderr.count("cached in") == 2 * 2 * 2 and "images" not in second.stderr

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(results["rows"]) == 8 and results["settings"]["k"] == [5, 10]
    with (tmp_path / "out" / "results.csv").open() as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 8 * (2 * 2 + 2 + 3)  # k-NN top-1 and top-5 per k, linear and C, three shot counts
    first_row = results["rows"][0]
    assert {line["metric"]: line["value"] for line in lines[:9]} == {
        k: "" if v is None else repr(v) for k, v in first_row["metrics"].items()
    }

    # One fingerprint: each cached file records exactly the EmbedMeta its name was derived from (planned without
    # loading the model), so a cache key cannot drift from what the file holds.
    options = probe_run.EmbedOptions(layers=[0, -1])
    for name in two_models:
        for pool in ("token", "avg"):
            planned = probe_run.planned_meta(name, pool, options)
            for split in ("train", "test"):
                (file,) = (tmp_path / "out" / "embeddings").glob(f"*{Path(name).name}-{pool}-{split}-*.safetensors")
                assert vitzoo.open_embeddings(file).meta == {**dataclasses.asdict(planned), "num_failed": 0}

    # The cached files are vitzoo embed outputs: probing them directly gives the same rows (labels from folders).
    cached = sorted((tmp_path / "out" / "embeddings").glob(f"*{m0.split('/')[-1]}-token-*.safetensors"))
    train_file = next(p for p in cached if "-train-" in p.name)
    test_file = next(p for p in cached if "-test-" in p.name)
    direct = cli(
        "probe", "--train", train_file, "--test", test_file, "--k", "5", "10", "--shots", "1", "5", "10",
        "--out", tmp_path / "direct",
    )  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    assert table_rows(direct.stdout) == rows[:2]


def test_npy_embeddings_and_a_label_list(dataset, two_models, tmp_path):
    """`vitzoo embed` outputs as .npy (paths in .paths.txt, metadata in .json) and .safetensors give the same rows;
    a label list replaces the folder names."""
    model = two_models[0]
    files = {}
    for suffix in (".npy", ".safetensors"):
        for split in ("train", "test"):
            files[split, suffix] = tmp_path / f"{split}{suffix}"
            args = ["embed", model, dataset / split, "--out", files[split, suffix], "--workers", "0", "--quiet"]
            assert cli(*args).returncode == 0
    settings = probe_run.ProbeSettings(k=(5,), C=1.0, shots=(1,))
    npy = probe_run.probe_files([(files["train", ".npy"], files["test", ".npy"])], settings=settings)
    st = probe_run.probe_files([(files["train", ".safetensors"], files["test", ".safetensors"])], settings=settings)
    assert [(r.model, r.layer, r.pool) for r in npy] == [(model, "final", "token")]
    assert [(r.model, r.layer, r.pool) for r in st] == [(model, "final", "token")]
    assert npy[0].metrics == st[0].metrics and npy[0].metrics["knn5_top1"] == 1.0
    for split in ("train", "test"):  # a .npy without its metadata (an older vitzoo): named by the file's stem
        (tmp_path / f"{split}.npy.json").unlink()
    bare = probe_run.probe_files([(files["train", ".npy"], files["test", ".npy"])], settings=settings)
    assert [(r.model, r.layer, r.pool) for r in bare] == [("train", "final", "-")] and bare[0].metrics == npy[0].metrics
    listing = tmp_path / "labels.csv"  # other names for the same classes: the same scores
    paths = (tmp_path / "train.npy.paths.txt").read_text().split() + (
        tmp_path / "test.npy.paths.txt"
    ).read_text().split()
    listing.write_text("".join(f"{p},class-{sorted(COLOURS).index(Path(p).parent.name)}\n" for p in paths))
    relabelled = probe_run.probe_files(
        [(files["train", ".npy"], files["test", ".npy"])], labels=label_lookup(listing), settings=settings
    )
    assert relabelled[0].metrics == npy[0].metrics
    (tmp_path / "test.npy.paths.txt").unlink()
    with pytest.raises(vitzoo.VitzooError, match=r"paths.txt"):
        probe_run.probe_files([(files["train", ".npy"], files["test", ".npy"])], settings=settings)


def test_csv_lists_are_the_same_split_as_the_folder(dataset, tmp_path):
    folder = read_labelled(dataset / "train")
    listing = tmp_path / "train.csv"
    with listing.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        for path, label in zip(folder.paths, folder.labels, strict=True):
            writer.writerow([path, label])
    assert read_labelled(listing) == folder
    assert set(folder.labels) == set(COLOURS) and len(folder.paths) == 18
    (tmp_path / "bad.csv").write_text("a.png,cat,extra\n")
    with pytest.raises(vitzoo.VitzooError, match="path,label"):
        read_labelled(tmp_path / "bad.csv")


def test_probe_refuses_mixed_inputs(dataset, tmp_path):
    res = cli("probe", "--train", dataset / "train", "--test", tmp_path / "x.safetensors")
    assert res.returncode == 2 and "one ImageFolder or .csv each" in res.stderr
    res = cli("probe", "--train", dataset / "train", "--test", dataset / "test")
    assert res.returncode == 2 and "name the models" in res.stderr


def test_probe_module_reports_none_for_impossible_shots():
    x, y = blobs(40, 2, 8, 2.0, seed=0)
    names = ["a" if v == 0 else "b" for v in y.tolist()]
    counts = min(names.count("a"), names.count("b"))
    got = probe_run.evaluate(x, names, x, names, probe_run.ProbeSettings(k=(3,), C=1.0, shots=(1, counts + 1)))
    assert got["1shot"] is not None and got[f"{counts + 1}shot"] is None


FAST = ["--k", "5", "--C", "1", "--shots", "1", "--workers", "0", "--quiet"]  # no C sweep: the cheap protocols


def test_relative_folders_and_csvs_work_from_another_directory(dataset, two_models, tmp_path, monkeypatch):
    """docs/probe.md's `--train data/train --test data/test`, run from elsewhere: the labels are found for every
    embedded image (the embed job records absolute paths), for folders, CSVs and --labels lists alike."""
    work = tmp_path / "work"
    (work / "lists").mkdir(parents=True)
    monkeypatch.chdir(work)
    rel = Path(os.path.relpath(dataset, work))
    model = two_models[0]
    folders = cli("probe", model, "--train", rel / "train", "--test", rel / "test", "--out", "out", *FAST)
    assert folders.returncode == 0, folders.stderr
    assert table_rows(folders.stdout)[0][3:6] == ["18", "12", "100.0"]
    for split in ("train", "test"):  # rows relative to the CSV's folder, the CSV itself given relative
        listing = read_labelled(dataset / split)
        pairs = zip(listing.paths, listing.labels, strict=True)
        rows = [f"{os.path.relpath(p, work / 'lists')},{y}\n" for p, y in pairs]
        (work / "lists" / f"{split}.csv").write_text("".join(rows))
    csvs = cli("probe", model, "--train", "lists/train.csv", "--test", "lists/test.csv", "--out", "out2", *FAST)
    assert csvs.returncode == 0, csvs.stderr
    assert table_rows(csvs.stdout) == table_rows(folders.stdout)
    for split in ("train", "test"):
        assert (
            cli("embed", model, rel / split, "--out", f"{split}.safetensors", "--workers", "0", "--quiet").returncode
            == 0
        )
    (work / "lists" / "all.csv").write_text(
        (work / "lists" / "train.csv").read_text() + (work / "lists" / "test.csv").read_text()
    )
    files = cli(
        "probe", "--train", "train.safetensors", "--test", "test.safetensors", "--labels", "lists/all.csv", "--out",
        "out3", *FAST,
    )  # fmt: skip
    assert files.returncode == 0, files.stderr
    assert table_rows(files.stdout)[0][3:] == table_rows(folders.stdout)[0][3:]


def test_probe_label_faults_are_one_line_errors(dataset, two_models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out
    model = two_models[0]
    train = read_labelled(dataset / "train")
    one = tmp_path / "one.csv"
    one.write_text("".join(f"{p},red_square\n" for p in train.paths))
    one_line_error(cli("probe", model, "--train", one, "--test", dataset / "test", *FAST), "at least two classes")
    extra = tmp_path / "extra.csv"  # a test class the training set lacks
    labels = ["purple", *train.labels[1:]]
    extra.write_text("".join(f"{p},{y}\n" for p, y in zip(train.paths, labels, strict=True)))
    one_line_error(cli("probe", model, "--train", dataset / "train", "--test", extra, *FAST), "'purple'", "lacks")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,label\n{train.paths[0]},red_square\n{train.paths[1]}\n")
    one_line_error(cli("probe", model, "--train", bad, "--test", dataset / "test", *FAST), "line 3", "path,label")
    missing = tmp_path / "nowhere"
    one_line_error(cli("probe", model, "--train", missing, "--test", dataset / "test", *FAST), "no such file")


def test_probes_refuse_a_single_class():
    x, _ = blobs(20, 2, 4, 1.0, seed=0)
    same = torch.zeros(20, dtype=torch.long)
    with pytest.raises(vitzoo.ConfigError, match="at least two classes"):
        vitzoo.knn_eval(x, same, x, same)
    with pytest.raises(vitzoo.ConfigError, match="at least two classes"):
        vitzoo.linear_probe(x, same, x, same, C=1.0)
    with pytest.raises(vitzoo.ConfigError, match="at least two classes"):
        vitzoo.fewshot_eval(None, (x, same), (x, same), shots=(1,))


def test_the_cache_follows_a_local_models_weights_and_config(dataset, tmp_path):
    """New weights (or preprocessing) behind the same local-dir: name are embedded again, not read from the cache."""
    folder = tmp_path / "model"

    def save(seed: int) -> None:
        torch.manual_seed(seed)
        model = vitzoo.create_model("vit_tiny_patch16_224", depth=1, img_size=32, num_classes=0)
        vitzoo.save_pretrained(randomize_(model, seed=seed), folder)

    save(0)
    args = ["probe", f"local-dir:{folder}", "--train", dataset / "train", "--test", dataset / "test"]
    args += ["--out", tmp_path / "out", *FAST[:-1]]  # not --quiet: the log says what was embedded

    def embedded() -> int:
        res = cli(*args)
        assert res.returncode == 0, res.stderr
        assert res.stderr.count(": embedding ") + res.stderr.count(": cached in ") == 2, res.stderr
        return res.stderr.count(": embedding ")

    assert embedded() == 2
    assert embedded() == 0  # nothing changed: both splits from the cache
    save(1)  # other weights, same name, same size
    assert embedded() == 2
    config = json.loads((folder / "config.json").read_text())
    for key in ("pretrained_cfg", "vitzoo_pretrained_cfg"):
        config[key]["mean"] = [0.2, 0.3, 0.4]
    (folder / "config.json").write_text(json.dumps(config))
    assert embedded() == 2
    assert embedded() == 0
