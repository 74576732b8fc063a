"""Searching an embed output (``vitzoo.search_embeddings``, ``vitzoo search``): the same top-k as a brute-force numpy
search in every layout, ties to the lower row, the refusals, and the command end to end on a tiny CLIP tower."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

import vitzoo
from conftest import cli, one_line_error, randomize_, save_tiny_clip, write_images
from vitzoo.eval.search import check_joint_space, joint_space_pool
from vitzoo.features.fingerprint import EmbedMeta
from vitzoo.features.outputs import merge_shards
from vitzoo.features.shards import write_index, write_shard
from vitzoo.features.store import ConcatArray

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module

SHARDS = (90, 0, 37, 120, 53)  # rows per shard: uneven, one empty
BLOCK = 41  # rows per block: crosses every shard boundary, 300 rows are 8 blocks
META = EmbedMeta(model="m.tag", tag="tag", revision=None, img_size=[224, 224], pool="map", layers=[], dtype="float32")


def write_output(folder, features, meta=META, key="features"):
    """``features`` as the embed job writes them: a dataset directory of ``SHARDS`` (paths ``img/<row>.jpg``)."""
    folder.mkdir()
    start = 0
    for k, n in enumerate(SHARDS):
        rows = range(start, start + n)
        write_shard(folder, k, {key: features[start : start + n]}, [f"img/{i}.jpg" for i in rows], [])
        start += n
    assert start == len(features)
    write_index(folder, len(SHARDS), {**vars(meta)}, {"inputs": "digest"})
    return folder


@pytest.fixture(scope="module")
def features():
    return np.random.default_rng(0).normal(size=(sum(SHARDS), 24)).astype(np.float32)


@pytest.fixture(scope="module", params=["dir", "safetensors", "npy"])
def output(request, tmp_path_factory, features):
    """The same rows in each layout: the directory, and the single files merged from its shards as embed does."""
    folder = write_output(tmp_path_factory.mktemp("out") / "emb", features)
    if request.param == "dir":
        return folder
    out = folder.parent / f"emb.{request.param}"
    merge_shards(folder, len(SHARDS), out, META, {"inputs": "digest"})
    return out


def brute_force(features, queries, k):
    """Cosine top-k in float64 numpy over every row at once; ties to the lower row."""
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = q.astype(np.float64) @ x.T.astype(np.float64)
    order = np.stack([np.lexsort((np.arange(len(x)), -s))[:k] for s in scores])
    return np.take_along_axis(scores, order, axis=1), order


def test_search_equals_brute_force_in_every_layout(output, features):
    queries = np.random.default_rng(1).normal(size=(5, 24)).astype(np.float32)
    queries[0] = 3 * features[200]  # a row of the output, scaled: it finds that row first, at 1
    found = vitzoo.search_embeddings(output, torch.from_numpy(queries), k=10, block_rows=BLOCK)
    scores, rows = brute_force(features, queries, 10)
    assert len(features) > 2 * BLOCK and found.indices.dtype == torch.int64 and len(found) == 5
    np.testing.assert_array_equal(found.indices.numpy(), rows)
    np.testing.assert_allclose(found.scores.numpy(), scores, rtol=0, atol=1e-6)
    assert found.indices[0, 0] == 200 and found.scores[0, 0] == pytest.approx(1, abs=1e-6)
    assert found.paths == [[f"img/{i}.jpg" for i in query] for query in rows]
    for block_rows in (1, 300, 10_000):  # one row at a time, one block, a block larger than the output
        again = vitzoo.search_embeddings(vitzoo.open_embeddings(output), queries, k=10, block_rows=block_rows)
        np.testing.assert_array_equal(again.indices.numpy(), rows)


def test_k_larger_than_the_output_ranks_every_row(output, features):
    queries = np.random.default_rng(2).normal(size=(2, 24)).astype(np.float32)
    found = vitzoo.search_embeddings(output, queries, k=1000, block_rows=BLOCK)
    scores, rows = brute_force(features, queries, len(features))
    assert found.indices.shape == (2, len(features))
    np.testing.assert_array_equal(found.indices.numpy(), rows)
    np.testing.assert_allclose(found.scores.numpy(), scores, rtol=0, atol=1e-6)


def test_a_directory_is_read_one_shard_at_a_time(tmp_path, features):
    E = vitzoo.open_embeddings(write_output(tmp_path / "emb", features))
    vitzoo.search_embeddings(E, features[:2], k=3, block_rows=BLOCK)
    parts = E["features"].parts
    assert isinstance(E["features"], ConcatArray) and all(callable(p) for p in parts)  # no shard kept open


def test_ties_go_to_the_lower_row(tmp_path, features):
    tied = features.copy()
    tied[[7, 8, 130, 299]] = tied[50]  # one vector five times: in the first, third and last blocks
    tied[[150, 151, 152, 153, 154, 155]] = 2 * tied[160]  # six equal scores in one block, and a seventh
    E = vitzoo.open_embeddings(write_output(tmp_path / "emb", tied))
    queries = tied[[50, 160]]
    for block_rows in (BLOCK, 1, 300):
        found = vitzoo.search_embeddings(E, queries, k=3, block_rows=block_rows)
        assert found.indices.tolist() == [[7, 8, 50], [150, 151, 152]], block_rows
        five = vitzoo.search_embeddings(E, queries, k=5, block_rows=block_rows).indices.tolist()
        assert five == [[7, 8, 50, 130, 299], [150, 151, 152, 153, 154]], block_rows
    same = np.ones((sum(SHARDS), 4), np.float32)  # every row ties with every other
    E = vitzoo.open_embeddings(write_output(tmp_path / "same", same))
    found = vitzoo.search_embeddings(E, np.ones((1, 4)), k=4, block_rows=BLOCK)
    assert found.indices.tolist() == [[0, 1, 2, 3]] and torch.allclose(found.scores, torch.ones(1, 4))


def test_refusals(tmp_path, output, features):
    with pytest.raises(vitzoo.ConfigError, match="24 wide and the queries 16"):
        vitzoo.search_embeddings(output, np.ones((1, 16)))
    with pytest.raises(vitzoo.ConfigError, match=r"\(queries, dim\) matrix"):
        vitzoo.search_embeddings(output, np.ones(24))
    with pytest.raises(vitzoo.ConfigError, match="k must be >= 1"):
        vitzoo.search_embeddings(output, np.ones((1, 24)), k=0)


def test_an_output_without_one_vector_per_image_is_refused(tmp_path, features):
    tokens = features.reshape(-1, 4, 6)
    with pytest.raises(vitzoo.ConfigError, match=r"per-token features \(300, 4, 6\) \(pool='tokens'\)"):
        vitzoo.search_embeddings(write_output(tmp_path / "tokens", tokens), np.ones((1, 6)))
    layers = write_output(tmp_path / "layers", features, META, key="layer_11")
    with pytest.raises(vitzoo.ConfigError, match=r"holds layer_11 \(embedded with --layers\); search wants one vector"):
        vitzoo.search_embeddings(layers, np.ones((1, 24)))


def test_check_joint_space():
    meta = vars(META)
    check_joint_space(meta, "m.tag", "map")
    check_joint_space(meta, "m.tag")  # the name only
    with pytest.raises(vitzoo.ConfigError, match=r"another model \(m.tag\), not other: search it with m.tag"):
        check_joint_space(meta, "other", "map")
    with pytest.raises(vitzoo.ConfigError, match=r"another pooling than the joint space \(pool='map'; m\.tag's image-"):
        check_joint_space(meta, "m.tag", "output")
    with pytest.raises(vitzoo.ConfigError, match=r"`vitzoo embed m\.tag IMAGES --out NEW --pool output`"):
        check_joint_space(meta, "m.tag", "output")
    with pytest.raises(vitzoo.ConfigError, match=r"block features \(--layers \[4\]\)"):
        check_joint_space({**meta, "layers": [4]}, "m.tag", "map")
    with pytest.raises(vitzoo.ConfigError, match="records no model"):
        check_joint_space({}, "m.tag", "map")


TINY = {"depth": 2, "embed_dim": 32, "num_heads": 2, "mlp_dim": 64}


def test_joint_space_pool_is_clips_projection_and_siglips_attention_pool():
    clip = vitzoo.create_model("vit_base_patch16_clip_224.openai", num_classes=16, **TINY)
    siglip = vitzoo.create_model("vit_base_patch16_siglip_224.webli", **TINY)
    assert (joint_space_pool(clip), joint_space_pool(siglip)) == ("output", "map")


@pytest.fixture(scope="module")
def clip_output(tmp_path_factory):
    """A tiny CLIP tower (random weights, openai's preprocessing), saved, and 11 images embedded in its joint
    space (--pool output) into a dataset directory of 3 shards. Its matrices are scaled up: ``randomize_``'s small
    weights map every image to nearly one vector (cosines over 0.9999), these spread them (cosines under 0.91)."""
    root = tmp_path_factory.mktemp("clip")
    model = randomize_(vitzoo.create_model("vit_base_patch16_clip_224.openai", num_classes=16, **TINY), seed=5)
    with torch.no_grad():
        for weight in (p for p in model.parameters() if p.ndim > 1):
            weight.mul_(20)
    name = f"local-dir:{vitzoo.save_pretrained(model.eval(), root / 'clip')}"
    files = write_images(root / "imgs", n_plain=7)
    out = root / "emb"
    res = cli("embed", name, root / "imgs", "--out", out, "--pool", "output", "--shard-size", "4", "--workers", "0")
    assert res.returncode == 0, res.stderr
    return name, files, out


def test_search_command_finds_the_query_image_first(clip_output):
    name, files, out = clip_output
    query = files["p003.jpg"]
    res = cli("search", out, "--model", name, "--image", query, "--top", "3", "--block-rows", "5")
    assert res.returncode == 0, res.stderr
    header, first, *rest = res.stdout.splitlines()
    assert header.split() == ["rank", "score", "path"] and len(rest) == 2
    assert first.split() == ["1", "1.0000", str(query)]
    res = cli("search", out, "--model", name, "--image", query, "--top", "20", "--json")
    hits = json.loads(res.stdout)
    E = vitzoo.open_embeddings(out)
    assert [h["rank"] for h in hits] == list(range(1, len(E) + 1)) and len(E) == 11  # 11: the corrupt one left out
    assert hits[0]["path"] == str(query) and hits[0]["score"] == pytest.approx(1, abs=1e-5)
    assert hits[1]["score"] < 0.95  # the query image is found by its content, not by a rounding of equal scores
    assert [E.paths[h["row"]] for h in hits] == [h["path"] for h in hits]
    assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(hits))


def test_search_command_refusals(clip_output, tmp_path):
    name, files, out = clip_output
    query = files["p001.jpg"]
    one_line_error(cli("search", out, "--model", name, "--text", "a cat"), "no text tower")
    one_line_error(cli("search", out, "--model", "vit_base_patch16_clip_224.openai", "--image", query), "another model")
    embedded = tmp_path / "token.npy"  # CLIP's own pool: the class token, before the projection
    assert cli("embed", name, files["p000.jpg"], "--out", embedded, "--workers", "0", "--quiet").returncode == 0
    one_line_error(cli("search", embedded, "--model", name, "--image", query), "pool='token'", "--pool output`")
    one_line_error(cli("search", out, "--model", name, "--image", tmp_path / "none.jpg"), "none.jpg")
    res = cli("search", out, "--model", name)
    assert res.returncode == 2 and "one of the arguments --text --image is required" in res.stderr


def test_search_command_with_a_text_equals_brute_force(tmp_path):
    """``--text``: the query is the text tower's embedding (``encode_text``), searched over images embedded in the
    joint space; the top-K equal a numpy search with that embedding, over an output of 3 shards in blocks of 4."""
    name = save_tiny_clip(tmp_path / "clip")
    files = write_images(tmp_path / "imgs", n_plain=7)
    out = tmp_path / "emb"
    res = cli("embed", name, tmp_path / "imgs", "--out", out, "--pool", "output", "--shard-size", "4", "--workers", "0")
    assert res.returncode == 0, res.stderr
    res = cli("search", out, "--model", name, "--text", "a photo of a cat", "--top", "5", "--block-rows", "4", "--json")
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    with torch.no_grad():
        query = vitzoo.create_image_text_model(name).encode_text(["a photo of a cat"]).numpy()
    E = vitzoo.open_embeddings(out)
    scores, rows = brute_force(np.asarray(E["features"]), query, 5)
    assert len(E) == 11 and len(files) > 5 and len(set(np.round(scores[0], 4))) == 5  # distinct: an order to check
    assert [h["row"] for h in hits] == rows[0].tolist()
    np.testing.assert_allclose([h["score"] for h in hits], scores[0], rtol=0, atol=1e-5)
    assert [h["path"] for h in hits] == [E.paths[r] for r in rows[0]]
