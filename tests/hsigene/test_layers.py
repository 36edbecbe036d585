"""The fused (SDPA) layers compute what the public formulations compute, written out here
explicitly as the public files state them (LiPang/HSIGene 9f893a7)."""

from __future__ import annotations

import math

import torch


def test_fdn_self_attention_is_unscaled_softmax_of_qk():
    from stages.hsigene.local_adapter import SelfAttention

    torch.manual_seed(0)
    att = SelfAttention(32)
    x = torch.randn(2, 32, 5, 6)
    b, c, h, w = x.shape
    # models/local_adapter.py L59-L69: softmax(bmm(qᵀ, k)) over keys, out = bmm(v, attnᵀ) + x; no 1/√d.
    q = att.query_conv(x).view(b, -1, h * w).permute(0, 2, 1)
    k = att.key_conv(x).view(b, -1, h * w)
    v = att.value_conv(x).view(b, -1, h * w)
    attn = torch.softmax(torch.bmm(q, k), dim=-1)
    expected = torch.bmm(v, attn.permute(0, 2, 1)).view(b, c, h, w) + x
    assert torch.allclose(att(x), expected, atol=1e-5)


def test_vae_attention_scales_by_sqrt_channels():
    from stages.hsigene.vae import AttnBlock

    torch.manual_seed(1)
    att = AttnBlock(32)
    x = torch.randn(1, 32, 4, 4)
    y = att.norm(x)
    q, k, v = (m(y).reshape(1, 32, 16) for m in (att.q, att.k, att.v))
    w_ = torch.softmax(torch.bmm(q.permute(0, 2, 1), k) * 32**-0.5, dim=2)  # model.py L186-L193
    expected = x + att.proj_out(torch.bmm(v, w_.permute(0, 2, 1)).reshape(1, 32, 4, 4))
    assert torch.allclose(att(x), expected, atol=1e-5)


def test_metadata_embedding_matches_the_interleaved_sinusoid():
    from stages.hsigene import HSIGeneConfig
    from stages.hsigene.global_adapters import MetadataEmbedding

    torch.manual_seed(2)
    cfg = HSIGeneConfig.tiny()
    emb = MetadataEmbedding(cfg)
    values = torch.rand(3, 7)
    d = cfg.model_channels
    # ldm diffusionmodules/util.py L161-L173, L187-L194.
    table = torch.zeros(3, 7, d)
    for j in range(7):
        for i in range(d // 2):
            table[:, j, 2 * i] = torch.sin(values[:, j] * 1000 * 10000 ** (-2 * i / d))
            table[:, j, 2 * i + 1] = torch.cos(values[:, j] * 1000 * 10000 ** (-2 * i / d))
    flat = table.view(3, -1)
    expected = sum(emb.mlp_models[j](flat[:, j * d : (j + 1) * d]) for j in range(7))
    assert torch.allclose(emb(values), expected, atol=1e-4)
    # Inference passes zeros: the embedding is then Σ_j W_j·[0, 1, 0, 1, …] + b_j, not zero.
    zero = emb(torch.zeros(1, 7))
    alternating = torch.tensor([0.0, 1.0] * (d // 2))
    assert torch.allclose(zero[0], sum(m.fc1.weight @ alternating + m.fc1.bias for m in emb.mlp_models), atol=1e-5)


def test_cross_attention_matches_the_einsum_form():
    from stages.hsigene.blocks import CrossAttention

    torch.manual_seed(3)
    att = CrossAttention(32, 16, heads=4, dim_head=8)
    x, ctx = torch.randn(2, 10, 32), torch.randn(2, 7, 16)
    q, k, v = att.to_q(x), att.to_k(ctx), att.to_v(ctx)
    split = lambda t: t.view(2, t.shape[1], 4, 8).permute(0, 2, 1, 3).reshape(8, t.shape[1], 8)  # noqa: E731
    sim = torch.einsum("bid,bjd->bij", split(q), split(k)) * 8**-0.5  # attention.py L172-L193
    out = torch.einsum("bij,bjd->bid", sim.softmax(-1), split(v))
    out = out.view(2, 4, 10, 8).permute(0, 2, 1, 3).reshape(2, 10, 32)
    assert torch.allclose(att(x, ctx), att.to_out(out), atol=1e-5)


def test_timestep_embedding_is_cos_then_sin():
    from stages.hsigene.blocks import timestep_embedding

    e = timestep_embedding(torch.tensor([0, 7]), 8)
    freqs = torch.exp(-math.log(10000) * torch.arange(4) / 4)
    assert torch.allclose(e[1], torch.cat([torch.cos(7 * freqs), torch.sin(7 * freqs)]))
    assert e[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
