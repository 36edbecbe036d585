"""Writes ``released_keys.json``: the released HSIGene checkpoint's state-dict keys and shapes,
enumerated from the public model definition as read (NOT from hsigen's modules, so the
test comparing the two is a real check):

    LiPang/HSIGene @ 9f893a7 — configs/inference.yaml; models/CRS_Diff.py; models/local_adapter.py;
    models/global_adapter.py; models/metadata_embedding.py; ldm/models/diffusion/ddpm.py;
    ldm/models/autoencoder.py; ldm/modules/diffusionmodules/{openaimodel,model}.py;
    ldm/modules/attention.py; ldm/modules/encoders/modules.py (FrozenCLIPEmbedder → transformers
    CLIPTextModel of clip-vit-large-patch14, whose ``embeddings.position_ids`` buffer is saved by
    the transformers 4.x the release used).

Run: python tests/hsigene/derive_reference_keys.py  (rewrites the JSON beside this file).
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("released_keys.json")
keys: dict[str, list[int]] = {}


def put(name, *shape):
    assert name not in keys, name
    keys[name] = list(shape)


def linear(p, i, o, bias=True):
    put(p + ".weight", o, i)
    if bias:
        put(p + ".bias", o)


def conv(p, i, o, k):
    put(p + ".weight", o, i, k, k)
    put(p + ".bias", o)


def norm(p, c):
    put(p + ".weight", c)
    put(p + ".bias", c)


def resblock(p, i, o, emb=1280, norms=True):
    # openaimodel.py ResBlock: in_layers = [GN, SiLU, conv], emb_layers = [SiLU, Linear],
    # out_layers = [GN, SiLU, Dropout, conv]; LocalResBlock replaces both GNs by Identity.
    if norms:
        norm(p + ".in_layers.0", i)
    conv(p + ".in_layers.2", i, o, 3)
    linear(p + ".emb_layers.1", emb, o)
    if norms:
        norm(p + ".out_layers.0", o)
    conv(p + ".out_layers.3", o, o, 3)
    if i != o:
        conv(p + ".skip_connection", i, o, 1)


def enhanced_fdn(p, c, label):
    # local_adapter.py EnhancedFDN: fdn (affine-free GN, conv_gamma, conv_beta) + SelfAttention.
    conv(p + ".fdn.conv_gamma", label, c, 3)
    conv(p + ".fdn.conv_beta", label, c, 3)
    conv(p + ".attention.query_conv", c, c // 8, 1)
    conv(p + ".attention.key_conv", c, c // 8, 1)
    conv(p + ".attention.value_conv", c, c, 1)


def transformer(p, c, ctx=768):
    # attention.py SpatialTransformer (use_linear False, depth 1), heads·dim_head = c.
    norm(p + ".norm", c)
    conv(p + ".proj_in", c, c, 1)
    b = p + ".transformer_blocks.0"
    for a, kv in (("attn1", c), ("attn2", ctx)):
        linear(f"{b}.{a}.to_q", c, c, bias=False)
        linear(f"{b}.{a}.to_k", kv, c, bias=False)
        linear(f"{b}.{a}.to_v", kv, c, bias=False)
        linear(f"{b}.{a}.to_out.0", c, c)
    linear(b + ".ff.net.0.proj", c, 8 * c)  # GEGLU(c, 4c): Linear(c, 2·4c)
    linear(b + ".ff.net.2", 4 * c, c)
    for n in ("norm1", "norm2", "norm3"):
        norm(f"{b}.{n}", c)
    conv(p + ".proj_out", c, c, 1)


def unet_encoder(p, local=False):
    chans = [320]
    conv(p + ".input_blocks.0.0", 4, 320, 3)
    idx, ch, ds = 1, 320, 1
    inject = {1: 192, 4: 256, 7: 384, 10: 512}
    for level, mult in enumerate((1, 2, 4, 4)):
        for _ in range(2):
            o = 320 * mult
            b = f"{p}.input_blocks.{idx}.0"
            if local and idx in inject:
                enhanced_fdn(b + ".norm_in", ch, inject[idx])
                enhanced_fdn(b + ".norm_out", o, inject[idx])
                resblock(b, ch, o, norms=False)
            else:
                resblock(b, ch, o)
            ch = o
            if ds in (4, 2, 1):
                transformer(f"{p}.input_blocks.{idx}.1", ch)
            chans.append(ch)
            idx += 1
        if level != 3:
            conv(f"{p}.input_blocks.{idx}.0.op", ch, ch, 3)
            chans.append(ch)
            idx += 1
            ds *= 2
    resblock(p + ".middle_block.0", ch, ch)
    transformer(p + ".middle_block.1", ch)
    resblock(p + ".middle_block.2", ch, ch)
    return chans, ch, ds


def unet():
    p = "model.diffusion_model"
    linear(p + ".time_embed.0", 320, 1280)
    linear(p + ".time_embed.2", 1280, 1280)
    chans, ch, ds = unet_encoder(p)
    idx = 0
    for level, mult in list(enumerate((1, 2, 4, 4)))[::-1]:
        for i in range(3):
            o = 320 * mult
            resblock(f"{p}.output_blocks.{idx}.0", ch + chans.pop(), o)
            ch = o
            sub = 1
            if ds in (4, 2, 1):
                transformer(f"{p}.output_blocks.{idx}.1", ch)
                sub = 2
            if level and i == 2:
                conv(f"{p}.output_blocks.{idx}.{sub}.conv", ch, ch, 3)
                ds //= 2
            idx += 1
    norm(p + ".out.0", 320)
    conv(p + ".out.2", 320, 4, 3)


def local_adapter():
    p = "local_adapter"
    linear(p + ".time_embed.0", 320, 1280)
    linear(p + ".time_embed.2", 1280, 1280)
    f = p + ".feature_extractor"
    for i, (a, b) in zip((0, 2, 4, 6, 8), ((18, 32), (32, 64), (64, 64), (64, 128), (128, 128))):
        conv(f"{f}.pre_extractor.{i}", a, b, 3)
    for i, (a, b) in enumerate(((128, 192), (192, 256), (256, 384), (384, 512))):
        conv(f"{f}.extractors.{i}.0", a, b, 3)
    for i, c in enumerate((192, 256, 384, 512)):
        conv(f"{f}.zero_convs.{i}", c, c, 3)
    chans, ch, _ = unet_encoder(p, local=True)
    for i, c in enumerate(chans):
        conv(f"{p}.zero_convs.{i}.0", c, c, 1)
    conv(p + ".middle_block_out.0", ch, ch, 1)


def ff(p, dim, out, mult):
    inner = dim * mult
    linear(p + ".net.0.proj", dim, 2 * inner)
    linear(p + ".net.2", inner, out)


def global_adapters():
    ff("global_content_adapter.ff1", 768, 1536, 4)
    ff("global_content_adapter.ff2", 1536, 3072, 4)
    norm("global_content_adapter.norm1", 768)
    norm("global_content_adapter.norm2", 1536)
    ff("global_text_adapter.ff1", 768, 1536, 2)
    ff("global_text_adapter.ff2", 1536, 768, 4)
    norm("global_text_adapter.norm1", 768)
    norm("global_text_adapter.norm2", 1536)
    for j in range(7):
        linear(f"metadata_emb.mlp_models.{j}.fc1", 320, 1280)


def vae():
    p = "first_stage_model"

    def rb(q, i, o):
        norm(q + ".norm1", i)
        conv(q + ".conv1", i, o, 3)
        norm(q + ".norm2", o)
        conv(q + ".conv2", o, o, 3)
        if i != o:
            conv(q + ".nin_shortcut", i, o, 1)

    def attn(q, c):
        norm(q + ".norm", c)
        for n in ("q", "k", "v", "proj_out"):
            conv(f"{q}.{n}", c, c, 1)

    e = p + ".encoder"
    conv(e + ".conv_in", 48, 64, 3)
    cin, res = 64, 256
    for level, mult in enumerate((1, 2, 4)):
        o = 64 * mult
        for b in range(4):
            rb(f"{e}.down.{level}.block.{b}", cin if b == 0 else o, o)
            if res in (16, 32, 64):
                attn(f"{e}.down.{level}.attn.{b}", o)
        cin = o
        if level != 2:
            conv(f"{e}.down.{level}.downsample.conv", o, o, 3)
            res //= 2
    rb(e + ".mid.block_1", 256, 256)
    attn(e + ".mid.attn_1", 256)
    rb(e + ".mid.block_2", 256, 256)
    norm(e + ".norm_out", 256)
    conv(e + ".conv_out", 256, 192, 3)
    d = p + ".decoder"
    conv(d + ".conv_in", 96, 256, 3)
    rb(d + ".mid.block_1", 256, 256)
    attn(d + ".mid.attn_1", 256)
    rb(d + ".mid.block_2", 256, 256)
    cin, res = 256, 64
    for level in (2, 1, 0):
        o = 64 * (1, 2, 4)[level]
        for b in range(5):
            rb(f"{d}.up.{level}.block.{b}", cin if b == 0 else o, o)
            if res in (16, 32, 64):
                attn(f"{d}.up.{level}.attn.{b}", o)
        cin = o
        if level:
            conv(f"{d}.up.{level}.upsample.conv", o, o, 3)
            res *= 2
    norm(d + ".norm_out", 64)
    conv(d + ".conv_out", 64, 48, 3)
    conv(p + ".quant_conv", 192, 8, 1)
    conv(p + ".post_quant_conv", 4, 96, 1)


def clip_text():
    p = "cond_stage_model.transformer.text_model"
    put(p + ".embeddings.token_embedding.weight", 49408, 768)
    put(p + ".embeddings.position_embedding.weight", 77, 768)
    put(p + ".embeddings.position_ids", 1, 77)
    for i in range(12):
        q = f"{p}.encoder.layers.{i}"
        for n in ("k_proj", "v_proj", "q_proj", "out_proj"):
            linear(f"{q}.self_attn.{n}", 768, 768)
        norm(q + ".layer_norm1", 768)
        linear(q + ".mlp.fc1", 768, 3072)
        linear(q + ".mlp.fc2", 3072, 768)
        norm(q + ".layer_norm2", 768)
    norm(p + ".final_layer_norm", 768)


def main():
    for name in (
        "betas",
        "alphas_cumprod",
        "alphas_cumprod_prev",
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod",
        "posterior_variance",
        "posterior_log_variance_clipped",
        "posterior_mean_coef1",
        "posterior_mean_coef2",
        "logvar",
    ):
        put(name, 1000)
    unet()
    vae()
    clip_text()
    local_adapter()
    put_count = len(keys)
    global_adapters()
    doc = {
        "provenance": {
            "repository": "https://github.com/LiPang/HSIGene",
            "commit": "9f893a7",
            "files": [
                "configs/inference.yaml",
                "models/CRS_Diff.py",
                "models/local_adapter.py",
                "models/global_adapter.py",
                "models/metadata_embedding.py",
                "ldm/models/diffusion/ddpm.py",
                "ldm/models/autoencoder.py",
                "ldm/modules/diffusionmodules/openaimodel.py",
                "ldm/modules/diffusionmodules/model.py",
                "ldm/modules/attention.py",
                "ldm/modules/encoders/modules.py",
            ],
            "method": "enumerated by hand-written rules from the files above (tests/hsigene/derive_reference_keys.py); "
            "optional keys are saved only by some transformers versions",
        },
        "optional": ["cond_stage_model.transformer.text_model.embeddings.position_ids"],
        "keys": keys,
    }
    assert put_count > 0
    # One key per line: small enough to review, diff-friendly.
    body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in keys.items())
    head = json.dumps({k: v for k, v in doc.items() if k != "keys"}, indent=1)[:-2]
    OUT.write_text(head + ',\n "keys": {\n' + body + "\n }\n}\n")
    print(f"{len(keys)} keys → {OUT}")


if __name__ == "__main__":
    main()
