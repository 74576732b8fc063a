"""``vitzoo embed NAME --text-file FILE``: texts embedded by an image-text model's text tower into the embed job's
outputs (rows equal to ``encode_text``, paths the texts, in every layout), the file's line rule, the refusals, resuming,
and ``vitzoo search`` over an output of texts, on a tiny CLIP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import vitzoo
from conftest import cli, fast_first, one_line_error, preprocess, save_tiny_clip, save_tiny_model
from vitzoo.cli import build_parser, parse_args
from vitzoo.eval.search import check_joint_space
from vitzoo.features import texts as texts_job
from vitzoo.features.shards import shard_done
from vitzoo.features.texts import read_texts

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module

# A line separator (U+2028), a form feed and a lone CR stay inside their text; spaces around a text are kept.
TEXTS = [
    "a photo of a cat",
    "  a dog, indented",
    "line\u2028separator",
    "café ☕ naïve 東京",
    "form\x0cfeed and a lone\rcarriage return",
    "a red square",
    "the last one",
]
LAYOUTS = ["emb", "emb.safetensors", "emb.npy"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The tiny CLIP's name, a text file of ``TEXTS`` (CRLF endings, blank lines between) and ``encode_text(TEXTS)``
    computed directly."""
    root = tmp_path_factory.mktemp("clip")
    name = save_tiny_clip(root / "clip")
    text_file = root / "texts.txt"
    text_file.write_bytes(("\r\n\r\n  \t\r\n".join(TEXTS) + "\r\n").encode())
    with torch.no_grad():
        expected = vitzoo.create_image_text_model(name).encode_text(TEXTS).numpy()
    return name, text_file, expected


def test_read_texts_splits_on_newlines_only(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffone\ntwo\u2028still two\r\n\n   \n\u3000\nx\x0by\x1cz\x85w\n  kept  \nlast".encode())
    assert read_texts(path) == ["one", "two\u2028still two", "x\x0by\x1cz\x85w", "  kept  ", "last"]
    path.write_bytes(b"a\nb\n")  # a final newline ends the last text: no empty text after it
    assert read_texts(path) == ["a", "b"]
    path.write_bytes(b"\n \r\n")
    assert read_texts(path) == []


@pytest.mark.parametrize("layout", fast_first(LAYOUTS))
def test_rows_are_encode_text_and_paths_the_texts(clip, tmp_path, layout):
    name, text_file, expected = clip
    out = tmp_path / layout
    args = ["embed", name, "--text-file", text_file, "--out", out, "--shard-size", "3", "--batch-size", "2"]
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"{out}\n" and "7 texts embedded" in res.stderr
    E = vitzoo.open_embeddings(out)
    assert list(E.paths) == TEXTS and E.keys() == ["features"] and not E.failed
    np.testing.assert_allclose(np.asarray(E["features"]), expected, rtol=0, atol=1e-5)
    assert (E.meta["model"], E.meta["pool"], E.meta["layers"], E.meta["dtype"]) == (name, "text", [], "float32")
    assert E.command is not None
    leftovers = {p.name for p in tmp_path.iterdir()} - {out.name, f"{out.name}.json", f"{out.name}.paths.txt"}
    assert not leftovers and not (out / ".vitzoo-embed").exists()  # the work folder is gone

    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert cli(*args).returncode == 0  # the same command: finished, nothing to do
    one_line_error(cli(*args[:-1], "1"), "different command", "batch_size")  # another command into it: refused
    other = tmp_path / "other.txt"
    other.write_text("another text\n", encoding="utf-8")
    one_line_error(cli(*[other if a == text_file else a for a in args]), "different command", "inputs")
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p != other} == before  # nothing touched


def test_an_interrupted_run_resumes(clip, tmp_path, monkeypatch, capsys):
    name, text_file, expected = clip
    out = tmp_path / "emb"
    args = ["embed", name, "--text-file", str(text_file), "--out", str(out), "--shard-size", "3"]
    write = texts_job.write_shard

    def interrupted(folder, k, *rest):
        write(folder, k, *rest)
        raise KeyboardInterrupt  # as if Ctrl-C arrived right after the first shard was written

    with monkeypatch.context() as patch:
        patch.setattr(texts_job, "write_shard", interrupted)
        assert vitzoo.cli.main(args) == 130
    assert [k for k in range(3) if shard_done(out, k)] == [0] and not (out / "index.json").exists()
    capsys.readouterr()
    assert vitzoo.cli.main(args) == 0
    assert "resuming: 1 of 3 shards already done" in capsys.readouterr().err
    E = vitzoo.open_embeddings(out)
    assert list(E.paths) == TEXTS
    np.testing.assert_allclose(np.asarray(E["features"]), expected, rtol=0, atol=1e-5)


def test_refusals(clip, tmp_path):
    name, text_file, _ = clip
    out = tmp_path / "emb.npy"
    one_line_error(cli("embed", name, text_file, "--text-file", text_file, "--out", out), "not both")
    one_line_error(cli("embed", name, "--out", out), "no inputs", "--text-file")
    one_line_error(cli("embed", name, "--text-file", text_file, "--out", out, "--pool", "avg"), "--pool applies to")
    one_line_error(cli("embed", name, "--text-file", text_file, "--out", out, "--lease", "5"), "--lease applies to")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    one_line_error(cli("embed", name, "--text-file", bad, "--out", out), "latin1.txt is not UTF-8", "offset 3")
    one_line_error(cli("embed", name, "--text-file", tmp_path / "none.txt", "--out", out), "none.txt")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n", encoding="utf-8")
    one_line_error(cli("embed", name, "--text-file", blank, "--out", out), "no texts")
    _, image_only = save_tiny_model(tmp_path)
    one_line_error(cli("embed", image_only, "--text-file", text_file, "--out", out), "no text tower")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.txt", "latin1.txt", "tiny"]  # nothing written


def test_inputs_may_follow_the_options():
    """``inputs`` is ``nargs="*"`` (none with --text-file); images after the options still reach it."""
    parser = build_parser()
    assert parse_args(parser, ["embed", "N", "--out", "o", "a.jpg", "--quiet", "b.jpg"]).inputs == ["a.jpg", "b.jpg"]
    assert parse_args(parser, ["embed", "N", "a.jpg", "--out", "o", "--", "-b.jpg"]).inputs == ["a.jpg", "-b.jpg"]
    assert parse_args(parser, ["embed", "N", "--text-file", "t", "--out", "o"]).inputs == []
    with pytest.raises(SystemExit):
        parse_args(parser, ["embed", "N", "--out", "o", "a.jpg", "--bogus"])


def test_check_joint_space_takes_an_output_of_texts():
    meta = {"model": "m", "pool": "text", "layers": []}
    check_joint_space(meta, "m", "output")
    check_joint_space(meta, "m", "map")
    with pytest.raises(vitzoo.ConfigError, match=r"another model \(m\).*--text-file FILE"):
        check_joint_space(meta, "other", "output")


def test_search_over_texts(clip, tmp_path):
    """``--text``: a text of the output finds itself first; ``--image``: the captions ranked by the cosine with the
    image tower's embedding (``encode_image``), as the image-text model gives it."""
    name, text_file, expected = clip
    out = tmp_path / "captions.safetensors"
    assert cli("embed", name, "--text-file", text_file, "--out", out, "--quiet").returncode == 0
    res = cli("search", out, "--model", name, "--text", TEXTS[2], "--top", "3", "--json")
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert hits[0]["path"] == TEXTS[2] and hits[0]["row"] == 2 and hits[0]["score"] == pytest.approx(1, abs=1e-5)

    image = tmp_path / "red.png"
    Image.new("RGB", (40, 32), (200, 30, 20)).save(image)
    res = cli("search", out, "--model", name, "--image", image, "--top", "7", "--json")
    assert res.returncode == 0, res.stderr
    model = vitzoo.create_image_text_model(name)
    with torch.no_grad():
        query = model.encode_image(preprocess(model.visual, [image])).numpy()[0]
    cosine = expected @ query / np.linalg.norm(expected, axis=1) / np.linalg.norm(query)
    hits = json.loads(res.stdout)
    assert [h["row"] for h in hits] == np.argsort(-cosine, kind="stable").tolist()
    np.testing.assert_allclose([h["score"] for h in hits], np.sort(cosine)[::-1], rtol=0, atol=1e-5)
    assert [h["path"] for h in hits] == [TEXTS[h["row"]] for h in hits]
