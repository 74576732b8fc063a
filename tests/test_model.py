"""Model behaviour: dynamic sizes under weight changes, adaptation methods, dtypes, training paths."""

from __future__ import annotations

import copy

import pytest
import torch

import vitzoo
import vitzoo.models.linear
import vitzoo.models.vit
from conftest import TOL, maxdiff, timm_model
from vitzoo import resample_pos_embed


def _tiny(**kw) -> vitzoo.VisionTransformer:
    torch.manual_seed(0)
    return vitzoo.create_model("vit_tiny_patch16_224", **{"depth": 2, "num_classes": 10, **kw}).eval()


def _timm_dynamic(model: vitzoo.VisionTransformer) -> torch.nn.Module:
    """timm's dynamic-size ViT holding ``model``'s current weights (a copy): what the outputs must be."""
    import timm

    cfg = model.config
    ref = timm.create_model("vit_tiny_patch16_224", depth=cfg.depth, num_classes=cfg.num_classes, dynamic_img_size=True)
    ref.load_state_dict({k: v.detach().clone() for k, v in model.state_dict().items()})
    return ref.to(next(model.parameters()).dtype).eval()


def test_properties():
    m = vitzoo.create_model("ViT-B/16", device="meta")
    assert m.num_features == 768 and m.num_prefix_tokens == 1
    assert m.patch_size == (16, 16) and m.grid_size == (14, 14)
    m = vitzoo.create_model("vit_base_patch32_384", img_size=(320, 448), device="meta")
    assert m.grid_size == (10, 14) and m.config.img_size == (320, 448)
    assert m.pos_embed.shape == (1, 1 + 10 * 14, 768)


@torch.no_grad()
def test_dynamic_size_outputs_follow_every_kind_of_weight_change(images):
    """At a size other than the native one the position table is resampled from the current weights, however they
    changed: nothing computed from earlier weights may be reused. Each output is timm's on a copy of the weights."""
    model = _tiny(dynamic_img_size=True)
    x = images(160, 96)
    first = model(x)
    assert torch.equal(model(x), first)  # a repeated size gives the same numbers
    assert maxdiff(first, _timm_dynamic(model)(x)) <= TOL

    def changed_and_right(what: str) -> None:
        out = model(x)
        assert not torch.equal(out, first), what
        assert maxdiff(out, _timm_dynamic(model)(x)) <= TOL, what

    model.pos_embed.add_(0.5)  # in place (what an optimizer step does)
    changed_and_right("in-place change")
    model.load_state_dict(_tiny(dynamic_img_size=True).state_dict() | {"pos_embed": torch.randn(1, 197, 192)})
    changed_and_right("load_state_dict")
    model.pos_embed.data = torch.randn(1, 197, 192)  # replaced storage
    changed_and_right("replaced storage")
    model.pos_embed = torch.nn.Parameter(torch.randn(1, 197, 192))  # replaced parameter
    changed_and_right("replaced parameter")
    wide = copy.deepcopy(model).to(torch.float64)  # dtype change
    out = wide(x.double())
    assert out.dtype == torch.float64 and maxdiff(out, _timm_dynamic(wide)(x.double())) <= TOL


def test_dynamic_size_training_reaches_pos_embed_and_inference_mode_outputs_are_reusable(images, monkeypatch):
    monkeypatch.setattr(vitzoo.models.linear, "_ONEDNN", None)  # inference on F.linear too: the same sums as autograd's
    model = _tiny(dynamic_img_size=True).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = images(160, 96)
    for _ in range(2):
        opt.zero_grad()
        model(x).square().mean().backward()
        assert model.pos_embed.grad is not None and model.pos_embed.grad.abs().sum() > 0
        opt.step()
    model.eval()
    with torch.no_grad():
        before = model(x)
        assert maxdiff(before, _timm_dynamic(model)(x)) <= TOL
        opt.step()  # the parameters move again after an eval forward at this size
        after = model(x)
        assert not torch.equal(after, before) and maxdiff(after, _timm_dynamic(model)(x)) <= TOL
    with torch.inference_mode():
        a = model(x)
    b = model(x)  # what inference mode computed is usable outside it, also with autograd
    assert torch.equal(a, b.detach())


def test_set_input_size_resamples_and_updates_config(images):
    model = _tiny()
    old = model.pos_embed.detach().clone()
    model.set_input_size((320, 448))
    assert model.config.img_size == (320, 448) and model.grid_size == (20, 28)
    assert torch.equal(model.pos_embed, resample_pos_embed(old, (20, 28), (14, 14)))
    assert model(images(320, 448)).shape == (2, 10)
    with pytest.raises(vitzoo.InputError):
        model(images(224, 224))


def test_reset_classifier():
    model = _tiny(dtype=torch.float64)
    model.reset_classifier(3)
    assert model.head.weight.shape == (3, 192) and model.head.weight.dtype == torch.float64
    assert model.config.num_classes == 3
    model.reset_classifier(0, global_pool="avg")
    assert isinstance(model.head, torch.nn.Identity) and model.config.global_pool == "avg"
    assert model(torch.randn(1, 3, 224, 224, dtype=torch.float64)).shape == (1, 192)


# bf16 keeps 8 significant bits (unit roundoff 2**-8 = 0.4%), fp16 11 bits (0.05%). Through the patch embedding, two
# blocks and the head the rounding of weights and activations adds up to a few units of roundoff relative to the
# largest logit (measured: 0.6% for bf16, 0.06% for fp16, the same for timm in that dtype). The bounds leave 5x
# headroom; a tensor left in another dtype, a wrong cast of the position table or an fp16 overflow is far outside.
LOW_PRECISION_TOL = {torch.bfloat16: 0.03, torch.float16: 0.005}  # max abs diff / max abs of the fp32 logits


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@torch.no_grad()
def test_dtype_argument_gives_the_fp32_numbers_within_the_dtype_precision(dtype, images):
    ref32 = timm_model("vit_tiny_patch16_224", seed=1, depth=2, num_classes=10)
    sd = ref32.state_dict()
    x = images(224, 224)
    want = ref32(x)
    bound = LOW_PRECISION_TOL[dtype] * want.abs().max().item()

    loaded = vitzoo.create_model("vit_tiny_patch16_224", depth=2, num_classes=10, pretrained=sd, dtype=dtype).eval()
    assert {p.dtype for p in loaded.parameters()} == {dtype}
    got = loaded(x.to(dtype))
    assert got.dtype == dtype
    assert maxdiff(got, want) <= bound
    peer = timm_model("vit_tiny_patch16_224", seed=1, depth=2, num_classes=10).to(dtype)  # timm in the same dtype
    assert maxdiff(got, peer(x.to(dtype))) <= bound

    torch.manual_seed(0)  # random init: the same seed gives the fp32 weights rounded to the dtype
    fresh = vitzoo.create_model("vit_tiny_patch16_224", depth=2, num_classes=10, dtype=dtype, device="cpu").eval()
    torch.manual_seed(0)
    fresh32 = vitzoo.create_model("vit_tiny_patch16_224", depth=2, num_classes=10).eval()
    for (name, p), p32 in zip(fresh.named_parameters(), fresh32.parameters(), strict=True):
        assert p.device.type == "cpu" and torch.equal(p, p32.to(dtype)), name


def test_meta_device_allocates_nothing():
    meta = vitzoo.create_model("vit_huge_patch14_224", device="meta")
    assert {p.device.type for p in meta.parameters()} == {"meta"}


def test_forward_intermediates_indices_and_formats(images):
    model = _tiny(depth=4)
    x = images(224, 224)
    _, every = model.forward_intermediates(x)
    assert len(every) == 4 and every[0].shape == (2, 192, 14, 14)
    last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
    assert all(torch.equal(a, b) for a, b in zip(last_two, every[2:], strict=True))
    picked = model.forward_intermediates(x, indices=[-1, 0], output_fmt="NLC", intermediates_only=True)
    assert [p.shape for p in picked] == [(2, 196, 192)] * 2
    assert torch.equal(picked[0], every[0].flatten(2).transpose(1, 2))  # in block order
    final, _ = model.forward_intermediates(x, indices=1)
    assert torch.equal(final, model.forward_features(x))
    for bad in (5, 0, [4], [-5]):
        with pytest.raises(vitzoo.ConfigError, match=r"out of range|last"):
            model.forward_intermediates(x, indices=bad)


@pytest.fixture
def checkpointed(monkeypatch):
    """The blocks torch's ``checkpoint`` runs (recomputed in backward), recorded as the model calls it."""
    runs: list[torch.nn.Module] = []
    real = vitzoo.models.vit.checkpoint

    def recording(block, *args, **kwargs):
        runs.append(block)
        return real(block, *args, **kwargs)

    monkeypatch.setattr(vitzoo.models.vit, "checkpoint", recording)
    return runs


def test_grad_checkpointing_recomputes_every_block_with_the_same_gradients(images, checkpointed):
    x = images(224, 224)
    grads = []
    for enable in (False, True):
        model = _tiny().train()
        model.set_grad_checkpointing(enable)
        checkpointed.clear()
        model(x).sum().backward()
        assert checkpointed == (list(model.blocks) if enable else [])  # each block once, only when enabled
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    with torch.no_grad():  # nothing to recompute without gradients
        model(x)
    assert checkpointed == list(model.blocks)


def test_dynamic_img_pad_equals_explicit_zero_padding(images):
    model = _tiny(dynamic_img_size=True, dynamic_img_pad=True)
    x = images(150, 90)
    padded = torch.nn.functional.pad(x, (0, 6, 0, 10))  # to 160 x 96
    with torch.no_grad():
        assert torch.equal(model(x), model(padded))


def test_stochastic_depth_only_in_training(images):
    model = _tiny(drop_path_rate=0.5)
    x = images(224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("pool", ["token", "avg"])
def test_forward_equals_head_of_features(pool, images, checkpointed):
    """forward() computes only the class token in the last block; the result must not change."""
    model = _tiny(depth=3, global_pool=pool)
    x = images(224, 224)
    with torch.no_grad():
        assert (model(x) - model.forward_head(model.forward_features(x))).abs().max().item() <= 1e-5
    model.train()
    model.set_grad_checkpointing(True)  # the shortened last block also runs under checkpointing
    model(x).sum().backward()
    assert checkpointed == list(model.blocks) and model.blocks[-1].mlp.fc1.weight.grad is not None


@pytest.mark.slow
def test_torch_compile_fullgraph_static_and_dynamic_sizes(images):
    """No graph breaks (fullgraph=True) and the same numbers, at the native size and at a new grid."""
    model = _tiny(dynamic_img_size=True)
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        for h, w in [(224, 224), (160, 96)]:
            x = images(h, w)
            assert (compiled(x) - model(x)).abs().max().item() <= 1e-5
