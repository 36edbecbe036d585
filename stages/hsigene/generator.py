"""Sampling the imported HSIGene model, written as a generator with the pieces every reverse-
diffusion loop needs: prepare conditions, initial noise, one denoising step, decode.

What the released inference does (LiPang/HSIGene 9f893a7 inference_single.py), kept here:
- local slots in the order hed, (empty), seg, (empty), sketch, mlsd (L65-L81), each an RGB
  image / 255 resized to 2 × the sample size (L69, L77-L78 at 512 for 256-px samples),
  absent slots all zeros; the 18 channels are concatenated in slot order (L102);
- content: a 768-d CLIP image feature or zeros when absent (L85-L96); text: the CLIP text
  model's last hidden state of the prompt (L120), "" when none; metadata: zeros (L100);
- DDIM with η 0 and guidance 1 (L128-L131), so ONE denoiser call per step, no unconditional pass;
- output x·0.5 + 0.5 (L136); here clipped to [0, 1] and kept as float.
Work that depends only on the conditions (CLIP text model, both global adapters, the
adapter's feature extractor, the metadata embedding) runs once per sample, not per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..common.errors import ConfigError, InputError

# inference_single.py L65: slot numbers 1…6; 2 and 4 stay empty in the release.
SLOTS = {"hed": 0, "seg": 2, "sketch": 4, "mlsd": 5}
ALIASES = {"segmentation": "seg"}
SAMPLERS = ("ddim", "dpm")
BOS, EOS = 49406, 49407   # CLIP BPE <|startoftext|>, <|endoftext|> (also the padding token of FrozenCLIPEmbedder)


@dataclass
class HSIGeneConditions:
    local: torch.Tensor             # (1, 18, 2S, 2S) in [0, 1]
    tokens: torch.Tensor            # (1, 77) CLIP token ids
    content: torch.Tensor           # (1, content_dim)
    metadata: torch.Tensor          # (1, 7)
    described: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)


def parse_cond(spec: str) -> tuple[str, Path]:
    if "=" in spec:
        kind, _, path = spec.partition("=")
    else:
        path = spec
        kind = next((k for k in list(SLOTS) + list(ALIASES) if Path(spec).stem.lower().startswith(k)), "")
    kind = ALIASES.get(kind.strip().lower(), kind.strip().lower())
    if kind not in SLOTS:
        raise ConfigError(f"--cond {spec}: HSIGene takes hed, seg, sketch and mlsd maps (KIND=FILE or a file "
                          "named after its kind)")
    return kind, Path(path)


def read_condition_image(path: Path, size: int) -> torch.Tensor:
    """(3, size, size) float in [0, 1]: RGB / 255, bilinear resize (cv2.resize's default)."""
    from PIL import Image

    if not path.is_file():
        raise InputError(f"condition image {path} does not exist")
    try:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    except Exception as exc:
        raise InputError(f"{path} is not a readable image ({exc})") from None
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return t[0]


def empty_prompt_tokens(length: int = 77) -> torch.Tensor:
    """The release's tokenizer turns "" into <|startoftext|> <|endoftext|> and pads with
    <|endoftext|> to 77 (modules.py L121-L122, padding="max_length")."""
    return torch.tensor([[BOS] + [EOS] * (length - 1)])


def tokenize(text: str, clip_model: str | None, length: int = 77) -> torch.Tensor:
    if not text:
        return empty_prompt_tokens(length)
    if clip_model is None:
        raise ConfigError("--text needs the CLIP tokenizer vocabulary: re-import with `hsigen import hsigene … "
                          "--clip-model DIR` (a local clip-vit-large-patch14 folder); nothing is downloaded")
    from transformers import CLIPTokenizer

    try:
        tok = CLIPTokenizer.from_pretrained(clip_model, local_files_only=True)
    except Exception as exc:
        raise InputError(f"--clip-model {clip_model}: no CLIP tokenizer there ({exc})") from None
    ids = tok([text], truncation=True, max_length=length, padding="max_length", return_tensors="pt")["input_ids"]
    return ids


def content_feature(path: Path, encoder_dir: str | None) -> torch.Tensor:
    """inference_single.py L85-L93 + data_prepare/annotator/content: a min–max stretched image
    through the fine-tuned CLIP image model's ``get_image_features``. The public path converts
    BGR→RGB twice (L90 and the annotator), so CLIP sees the channels reversed — kept here."""
    if encoder_dir is None:
        raise ConfigError("--content needs HSIGene's content encoder: re-import with `hsigen import hsigene … "
                          "--content-encoder DIR` (its fine-tuned CLIP image model, a local folder)")
    from PIL import Image
    from transformers import CLIPImageProcessor, CLIPModel

    if not path.is_file():
        raise InputError(f"--content {path} does not exist")
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    lo, hi = rgb.min(), rgb.max()
    img = ((rgb - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)[..., ::-1]
    try:
        model = CLIPModel.from_pretrained(encoder_dir, local_files_only=True).eval()
        processor = CLIPImageProcessor.from_pretrained(encoder_dir, local_files_only=True)
    except Exception as exc:
        raise InputError(f"--content-encoder {encoder_dir}: not a CLIP model folder ({exc})") from None
    with torch.no_grad():
        pixels = processor(images=Image.fromarray(np.ascontiguousarray(img)), return_tensors="pt")["pixel_values"]
        features = model.get_image_features(pixel_values=pixels)
        # transformers 4.x returns the projected tensor; 5.x an output whose pooler_output it is.
        features = getattr(features, "pooler_output", features)
        return features.float()


def ddim_timesteps(total: int, steps: int) -> np.ndarray:
    """ldm util.py L46-L60 ('uniform'): range(0, T, T // S) + 1, run from the largest; cut to
    exactly S steps (ldm would overrun T when S does not divide it, e.g. S = 3)."""
    c = total // steps
    return (np.arange(0, c * steps, c) + 1)[::-1].copy()


class HSIGeneGenerator:
    """One imported HSIGene model ready to sample on ``device`` in ``dtype``."""

    def __init__(self, artifact, device="cpu", dtype=torch.float32):
        from .artifact import load_model

        self.artifact = artifact
        self.device, self.dtype = torch.device(device), dtype
        self.model, self.cfg = load_model(artifact, device, dtype)
        self.clip_model = artifact.config.get("clip_model")
        self.content_encoder = artifact.config.get("content_encoder")
        ac = np.cumprod(1.0 - np.linspace(self.cfg.linear_start ** 0.5, self.cfg.linear_end ** 0.5,
                                          self.cfg.timesteps, dtype=np.float64) ** 2)
        self.alphas_cumprod = ac

    # -- conditions (once per call) ----------------------------------------------------------
    def prepare_conditions(self, cond: list[str], content: str | None, text: str | None, size: int) -> HSIGeneConditions:
        csize = size * self.cfg.condition_factor // self.cfg.vae.factor
        local = torch.zeros(1, self.cfg.local_channels, csize, csize)
        described: dict = {"local": {}, "content": None, "text": text or ""}
        inputs = []
        seen = set()
        for spec in cond:
            kind, path = parse_cond(spec)
            if kind in seen:
                raise ConfigError(f"--cond {kind} is given twice; give each kind once")
            seen.add(kind)
            slot = SLOTS[kind]
            local[0, 3 * slot:3 * slot + 3] = read_condition_image(path, csize)
            described["local"][kind] = str(path)
            inputs.append(path)
        if content is not None:
            feature = content_feature(Path(content), self.content_encoder)
            if feature.shape[-1] != self.cfg.content_dim:
                raise InputError(f"the content encoder gives {feature.shape[-1]}-d features; HSIGene takes "
                                 f"{self.cfg.content_dim}")
            described["content"] = str(content)
            inputs.append(Path(content))
        else:
            feature = torch.zeros(1, self.cfg.content_dim)
        tokens = tokenize(text or "", self.clip_model, self.cfg.text.max_length)
        return HSIGeneConditions(local, tokens, feature, torch.zeros(1, self.cfg.metadata_dim), described, inputs)

    @torch.no_grad()
    def encode_conditions(self, c: HSIGeneConditions, batch: int) -> dict:
        """The per-sample constants of every denoiser call, computed once."""
        m, dev, dt = self.model, self.device, self.dtype
        text = m.cond_stage_model(c.tokens.to(dev)).to(dt)
        context = m.context(text, c.content.to(dev, dt))
        features = m.local_adapter.feature_extractor(c.local.to(dev, dt).contiguous(memory_format=torch.channels_last))
        meta = m.metadata_emb(c.metadata.to(dev)).to(dt)
        return {"context": context.expand(batch, -1, -1), "features": [f.expand(batch, -1, -1, -1) for f in features],
                "metadata": meta.expand(batch, -1)}

    # -- the reverse-diffusion pieces --------------------------------------------------------
    def initial_noise(self, seeds: list[int], latent_size: int) -> torch.Tensor:
        """One generator per sample, so a sample's bits do not depend on the batch it ran in."""
        shape = (self.cfg.latent_channels, latent_size, latent_size)
        noise = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        return torch.stack(noise).to(self.device, self.dtype)

    @torch.no_grad()
    def denoise_step(self, x: torch.Tensor, t: int, encoded: dict) -> torch.Tensor:
        """ε̂(x_t, t): UNet + adapters, one call (guidance 1: no unconditional pass)."""
        b = x.shape[0]
        tt = torch.full((b,), int(t), device=self.device, dtype=torch.long)
        x = x.contiguous(memory_format=torch.channels_last)
        return self.model.denoise(x, tt, encoded["context"][:b], [f[:b] for f in encoded["features"]],
                                  encoded["metadata"][:b]).float()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> np.ndarray:
        """Latents → (B, 48, H, W) float32 in [0, 1] (x·0.5 + 0.5, clipped)."""
        vae = self.model.first_stage_model
        x = vae.decode((z / self.cfg.scale_factor).to(self.dtype).contiguous(memory_format=torch.channels_last))
        return (x.float() * 0.5 + 0.5).clamp(0.0, 1.0).cpu().numpy()

    def extras(self) -> dict:
        return {"architecture": "hsigene", "slots": ["hed", "", "seg", "", "sketch", "mlsd"]}

    # -- samplers ----------------------------------------------------------------------------
    def sample_latents(self, encoded: dict, seeds: list[int], latent_size: int, sampler: str, steps: int,
                       progress=None) -> torch.Tensor:
        x = self.initial_noise(seeds, latent_size).float()
        if sampler == "ddim":
            # DDIM, η 0 (Pang et al. eq. 2; ldm ddim.py p_sample_ddim): x₀ from ε̂, then the
            # deterministic step to the previous selected timestep (ᾱ_prev of the last step = ᾱ_0).
            ts = ddim_timesteps(self.cfg.timesteps, steps)
            ac = self.alphas_cumprod
            for i, t in enumerate(ts):
                a_t = float(ac[t])
                a_prev = float(ac[ts[i + 1]]) if i + 1 < len(ts) else float(ac[0])
                eps = self.denoise_step(x.to(self.dtype), t, encoded)
                x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
                x = a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps
                if progress is not None:
                    progress.advance(1)
            return x
        if sampler == "dpm":
            from diffusers import DPMSolverMultistepScheduler

            betas = np.linspace(self.cfg.linear_start ** 0.5, self.cfg.linear_end ** 0.5, self.cfg.timesteps) ** 2
            sched = DPMSolverMultistepScheduler(num_train_timesteps=self.cfg.timesteps, trained_betas=betas.tolist(),
                                                algorithm_type="dpmsolver++", solver_order=2,
                                                prediction_type="epsilon", timestep_spacing="leading",
                                                steps_offset=1, lower_order_final=True)
            sched.set_timesteps(steps)
            for t in sched.timesteps:
                eps = self.denoise_step(x.to(self.dtype), int(t), encoded)
                x = sched.step(eps, t, x).prev_sample
                if progress is not None:
                    progress.advance(1)
            return x
        raise ConfigError(f"--sampler {sampler!r}: HSIGene models sample with ddim or dpm")

    def generate(self, conditions: HSIGeneConditions, n: int, size: int, sampler: str, steps: int, seed: int,
                 batch_size: int, progress=None) -> np.ndarray:
        encoded = self.encode_conditions(conditions, min(batch_size, n))
        latent = size // self.cfg.vae.factor
        out = []
        for start in range(0, n, batch_size):
            seeds = [seed * 100003 + i for i in range(start, min(n, start + batch_size))]
            z = self.sample_latents(encoded, seeds, latent, sampler, steps, progress)
            out.append(self.decode(z))
        return np.concatenate(out)


def run_sample(artifact, out, cfg, *, cond: list[str], content: str | None, text: str | None, device: str,
               overwrite: bool, precision: str = "fp32"):
    """``hsigen sample`` for an ``architecture: hsigene`` model → an ``hsi-samples`` artifact."""
    from dataclasses import asdict

    from ..artifacts import ArtifactWriter, input_record, spectral_block
    from ..common import log
    from ..common.runtime import resolve_device
    from ..sampling.writer import FORMATS, write_samples
    from .artifact import load_config

    if cfg.format not in FORMATS:
        raise ConfigError(f"--format {cfg.format!r}: choose tif, envi or mat")
    if cfg.n < 1 or cfg.batch_size < 1:
        raise ConfigError("-n and --batch-size must be at least 1")
    if cfg.sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {cfg.sampler!r}: HSIGene models sample with ddim (the release's) or dpm")
    mcfg = load_config(artifact)
    steps = cfg.steps or 50
    if not 1 <= steps <= mcfg.timesteps:
        raise ConfigError(f"--steps {steps}: choose 1..{mcfg.timesteps}")
    size = cfg.size or int(artifact.config["sample_size"])
    multiple = mcfg.vae.factor * 2 ** (len(mcfg.channel_mult) - 1)
    if size % multiple:
        raise ConfigError(f"--size {size} must be a multiple of {multiple} for HSIGene")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ConfigError(f"--precision {precision!r}: choose fp32, bf16 or fp16")
    dev = resolve_device(device)
    if precision == "fp16" and torch.device(dev).type == "cpu":
        raise ConfigError("--precision fp16 needs a GPU; on a CPU use bf16 or fp32")

    recorded = {**asdict(cfg), "steps": steps, "size": size, "space": "latent", "architecture": "hsigene",
                "precision": precision, "conditions": {"cond": list(cond), "content": content, "text": text or ""}}
    recorded.pop("batch_size")
    # Condition kinds are checked before the model is loaded; the files are read (and any
    # missing one refused) before anything is written.
    files = [parse_cond(c)[1] for c in cond] + ([Path(content)] if content else [])
    records = [input_record(artifact.path)] + [input_record(p) for p in files if p.is_file()]
    writer = ArtifactWriter(Path(out), "hsi-samples", "sample", recorded, records, overwrite)
    if writer.up_to_date():
        log.info("sample: up to date")
        return writer.artifact
    writer.check_destination()
    gen = HSIGeneGenerator(artifact, dev, dtypes[precision])
    conditions = gen.prepare_conditions(list(cond), content, text, size)
    with log.progress(f"sample hsigene ({cfg.sampler}, {steps} steps)", cfg.n * steps) as bar:
        hsi = gen.generate(conditions, cfg.n, size, cfg.sampler, steps, cfg.seed, cfg.batch_size, progress=bar)
    spectral = artifact.spectral
    wl = np.asarray(spectral["wavelengths_nm"], np.float64)
    with writer.building() as tmp:
        summary = write_samples(tmp, hsi, wl, 1.0, 0.0, cfg.format,
                                conditions=conditions.local.numpy().astype(np.float32))
        writer.spectral = spectral_block(wl, 1.0, 0.0)
        writer.metrics = {**summary, "conditions": sorted(conditions.described["local"])}
        writer.extra = {"generator": gen.extras()}
    log.info(f"sample: {cfg.n} HSIGene samples of {len(wl)} bands × {size}×{size} in [0, 1] → {out}")
    return writer.artifact
