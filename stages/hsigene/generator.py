"""Sampling the imported HSIGene model through the one generator interface
(``stages/diffusion/generator.py``): ``sample --ckpt IMPORTED`` runs ``sampling/stage.py`` and the
one reverse loop (``diffusion/reverse.py``) with every sampler of ``diffusion/schedules.py``;
this module gives the conditions, one denoiser call (``predict``) and the decoding.

What the released inference does (LiPang/HSIGene 9f893a7 inference_single.py), kept here:
- local slots in the order hed, (empty), seg, (empty), sketch, mlsd (L65-L81), each an RGB
  image / 255 resized to 2 × the sample size (L69, L77-L78 at 512 for 256-px samples),
  absent slots all zeros; the 18 channels are concatenated in slot order (L102);
- content: a 768-d CLIP image feature or zeros when absent (L85-L96); text: the CLIP text
  model's last hidden state of the prompt (L120), "" when none; metadata: zeros (L100);
- DDIM with η 0 and guidance 1 (L128-L131), so ONE denoiser call per step, no unconditional pass
  (``--guidance`` other than 1 adds one, with every condition absent: empty slots, empty
  prompt, zero content); ldm's DDIM grid (timesteps k·T/S + 1, ᾱ_0 after the last step) is
  diffusers' ``steps_offset=1, set_alpha_to_one=False``, set in ``scheduler_config``;
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
from ..diffusion.generator import Conditions, Decoded
from ..diffusion.generator import Generator as BaseGenerator

# inference_single.py L65: slot numbers 1…6; 2 and 4 stay empty in the release.
SLOTS = {"hed": 0, "seg": 2, "sketch": 4, "mlsd": 5}
ALIASES = {"segmentation": "seg"}
BOS, EOS = 49406, 49407  # CLIP BPE <|startoftext|>, <|endoftext|> (also the padding token of FrozenCLIPEmbedder)


@dataclass
class HSIGeneConditions:
    local: torch.Tensor  # (1, 18, 2S, 2S) in [0, 1]
    tokens: torch.Tensor  # (1, 77) CLIP token ids
    content: torch.Tensor  # (1, content_dim)
    metadata: torch.Tensor  # (1, 7)
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
        raise ConfigError(
            f"--cond {spec}: HSIGene takes hed, seg, sketch and mlsd maps (KIND=FILE or a file named after its kind)"
        )
    return kind, Path(path)


def read_condition_image(path: Path, size: int | None = None) -> torch.Tensor:
    """(3, H, W) float in [0, 1]: RGB / 255; with ``size``, bilinear-resized to size × size
    (cv2.resize's default)."""
    from PIL import Image

    if not path.is_file():
        raise InputError(f"condition image {path} does not exist")
    try:
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    except Exception as exc:
        raise InputError(f"{path} is not a readable image ({exc})") from None
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    return t[0] if size is None else resize_map(t, size)[0]


def resize_map(t: torch.Tensor, size: int) -> torch.Tensor:
    """(n, C, h, w) → (n, C, size, size), bilinear (cv2.resize's default; unchanged if already that size)."""
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return t


def local_slots(cfg, maps: dict, size: int) -> torch.Tensor:
    """The adapter's local input (n, local_channels, size, size): each kind's map (n, 1 or 3,
    h, w) in [0, 1] as RGB (grey repeated, as reading an 8-bit grey PNG as RGB does),
    resized to ``size`` and put in its released slot (``SLOTS``); absent slots are zeros.
    Sampling (``prepare_conditions``) and condition-paired fine-tuning both build their
    slots here."""
    n = next(iter(maps.values())).shape[0] if maps else 1
    out = torch.zeros(n, cfg.local_channels, size, size)
    for kind, t in maps.items():
        t = torch.as_tensor(t, dtype=torch.float32)
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        slot = SLOTS[kind]
        out[:, 3 * slot : 3 * slot + 3] = resize_map(t, size)
    return out


def empty_prompt_tokens(length: int = 77) -> torch.Tensor:
    """The release's tokenizer turns "" into <|startoftext|> <|endoftext|> and pads with
    <|endoftext|> to 77 (modules.py L121-L122, padding="max_length")."""
    return torch.tensor([[BOS] + [EOS] * (length - 1)])


def tokenize(text: str, clip_model: str | None, length: int = 77) -> torch.Tensor:
    if not text:
        return empty_prompt_tokens(length)
    if clip_model is None:
        raise ConfigError(
            "--text needs the CLIP tokenizer vocabulary: re-import with `hsigen import hsigene … "
            "--clip-model DIR` (a local clip-vit-large-patch14 folder); nothing is downloaded"
        )
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
        raise ConfigError(
            "--content needs HSIGene's content encoder: re-import with `hsigen import hsigene … "
            "--content-encoder DIR` (its fine-tuned CLIP image model, a local folder)"
        )
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


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
RELEASED_SLOTS = ["hed", "", "seg", "", "sketch", "mlsd"]


def encode_conditions(model, c: HSIGeneConditions, batch: int = 1) -> dict:
    """The per-sample constants of every denoiser call (CLIP text model, both global adapters,
    the adapter's feature extractor, the metadata embedding), computed once for ``batch``
    copies of the conditions (in training each copy draws its own adapter dropout)."""
    p = next(model.unet.parameters())
    dev, dt = p.device, p.dtype
    text = model.cond_stage_model(c.tokens.to(dev)).to(dt).expand(batch, -1, -1)
    context = model.context(text, c.content.to(dev, dt).expand(batch, -1))
    local = c.local.to(dev, dt).expand(batch, -1, -1, -1).contiguous(memory_format=torch.channels_last)
    features = model.local_adapter.feature_extractor(local)
    meta = model.metadata_emb(c.metadata.to(dev).expand(batch, -1)).to(dt)
    return {"context": context, "features": features, "metadata": meta}


def empty_conditions(cfg, size: int) -> HSIGeneConditions:
    """Every condition absent, as the release feeds it: zero slots, the empty prompt, zero content."""
    csize = size * cfg.condition_factor // cfg.vae.factor
    return HSIGeneConditions(
        torch.zeros(1, cfg.local_channels, csize, csize),
        empty_prompt_tokens(cfg.text.max_length),
        torch.zeros(1, cfg.content_dim),
        torch.zeros(1, cfg.metadata_dim),
    )


class Generator(BaseGenerator):
    """An imported HSIGene model (``architecture: hsigene``) in the one sampling path."""

    default_guidance = 1.0  # the release samples at guidance 1
    precisions = tuple(DTYPES)

    def __init__(self, model):
        from .artifact import load_config

        super().__init__(model)
        self.cfg = load_config(model.artifact)
        self.pixel_factor = self.cfg.vae.factor
        self.clip_model = model.config.get("clip_model")
        self.content_encoder = model.config.get("content_encoder")
        self._encoded = (None, None)

    # -- options ------------------------------------------------------------------------------
    def default_size(self) -> int:
        return self.model.sample_size

    def size_multiple(self) -> int:
        return self.cfg.vae.factor * 2 ** (len(self.cfg.channel_mult) - 1)

    def noise_shape(self, size: int) -> tuple[int, int, int]:
        side = size // self.pixel_factor
        return (self.cfg.latent_channels, side, side)

    def scheduler_config(self) -> dict:
        config = {k: v for k, v in self.model.training_scheduler_config().items() if k != "_use_default_values"}
        # (diffusers would reset any key still listed in _use_default_values to its default)
        return {
            **config,
            "steps_offset": 1,
            "set_alpha_to_one": False,
            "timestep_spacing": "leading",
            "clip_sample": False,
        }

    def set_precision(self, precision: str | None, device) -> None:
        precision = precision or "fp32"
        if precision not in DTYPES:
            raise ConfigError(f"--precision {precision!r}: choose fp32, bf16 or fp16")
        if precision == "fp16" and torch.device(device).type == "cpu":
            raise ConfigError("--precision fp16 needs a GPU; on a CPU use bf16 or fp32")
        self.precision = precision

    # -- before anything is written -----------------------------------------------------------
    def prepare_conditions(
        self, cond: list[str], content: str | None, text: str | None, size: int
    ) -> HSIGeneConditions:
        c = empty_conditions(self.cfg, size)
        csize = c.local.shape[-1]
        c.described = {"local": {}, "content": None, "text": text or ""}
        if (text or content is not None) and str(self.model.config.get("training", {}).get("from", "")).startswith(
            "scratch"
        ):
            raise ConfigError(
                f"{'--text' if text else '--content'}: this model was trained from scratch (hsigene/scratch.py) "
                "with a random, frozen CLIP text model and the empty prompt, without a content encoder; it "
                "takes --cond maps only"
            )
        maps = {}
        for spec in cond:
            kind, path = parse_cond(spec)
            if kind in maps:
                raise ConfigError(f"--cond {kind} is given twice; give each kind once")
            maps[kind] = read_condition_image(path)[None]
            c.described["local"][kind] = str(path)
            c.inputs.append(path)
        if maps:
            c.local = local_slots(self.cfg, maps, csize)
        if content is not None:
            feature = content_feature(Path(content), self.content_encoder)
            if feature.shape[-1] != self.cfg.content_dim:
                raise InputError(
                    f"the content encoder gives {feature.shape[-1]}-d features; HSIGene takes {self.cfg.content_dim}"
                )
            c.content = feature
            c.described["content"] = str(content)
            c.inputs.append(Path(content))
        c.tokens = tokenize(text or "", self.clip_model, self.cfg.text.max_length)
        return c

    def prepare(self, request, n: int, size: int, guidance: float) -> Conditions:
        if request is not None and request.conditions is not None:
            raise ConfigError("HSIGene models take condition images (--cond hed=FILE …), not a --conditions artifact")
        if guidance < 0:
            raise ConfigError("--guidance must be >= 0 (1 = the release's: no unconditional pass)")
        c = self.prepare_conditions(
            list(request.files) if request else [],
            request.content if request else None,
            request.text if request else None,
            size,
        )
        kinds = sorted(c.described["local"])
        recorded = {
            "architecture": "hsigene",
            "precision": getattr(self, "precision", "fp32"),
            "guidance": float(guidance),
            "conditions": {
                "cond": list(request.files) if request else [],
                "content": c.described["content"],
                "text": c.described["text"],
                "kinds": kinds,
            },
        }
        return Conditions(n, inputs=list(c.inputs), recorded=recorded, kinds=kinds, guidance=float(guidance), state=c)

    # -- generation ---------------------------------------------------------------------------
    def load(self, device, batch_size: int = 16) -> None:
        from .artifact import load_model

        self.device, self.batch_size = torch.device(device), batch_size
        self.dtype = DTYPES[getattr(self, "precision", "fp32")]
        self.net, _ = load_model(self.model.artifact, self.device, self.dtype)
        self._encoded = (None, None)

    def _constants(self, conditions: Conditions) -> list[dict]:
        """[conditional] or [conditional, unconditional] constants, encoded once per run."""
        if self._encoded[0] is not conditions:
            with torch.no_grad():
                encoded = [encode_conditions(self.net, conditions.state)]
                if conditions.guidance != 1.0:
                    size = conditions.state.local.shape[-1] * self.cfg.vae.factor // self.cfg.condition_factor
                    encoded.append(encode_conditions(self.net, empty_conditions(self.cfg, size)))
            self._encoded = (conditions, encoded)
        return self._encoded[1]

    def predict(self, x, t, rows: slice, conditions: Conditions):
        """ε̂(x_t, t): UNet + adapters in one call; at guidance g ≠ 1 the unconditional ε̂_u joins the
        batch and ε̂ = ε̂_u + g (ε̂_c − ε̂_u)."""
        guidance = conditions.guidance_at(t)
        encoded = self._constants(conditions)[: 1 if guidance == 1.0 else 2]
        b = x.shape[0]
        k = len(encoded)
        x_in = x.to(self.device, self.dtype).repeat(k, 1, 1, 1).contiguous(memory_format=torch.channels_last)
        tt = torch.full((k * b,), int(t), device=self.device, dtype=torch.long)
        cat = lambda key: torch.cat([e[key].expand(b, *e[key].shape[1:]) for e in encoded])  # noqa: E731
        features = [
            torch.cat([e["features"][j].expand(b, *e["features"][j].shape[1:]) for e in encoded])
            for j in range(len(encoded[0]["features"]))
        ]
        eps = self.net.denoise(x_in, tt, cat("context"), features, cat("metadata")).float()
        if k == 1:
            return eps
        cond, uncond = eps[:b], eps[b:]
        return uncond + guidance * (cond - uncond)

    def decode(self, x0: np.ndarray, rows: slice, conditions: Conditions) -> Decoded:
        """Latents → (n, 48, H, W) float32 in [0, 1] (x·0.5 + 0.5, clipped), with the local
        condition maps each sample used (samples.h5 ``conditions``, released slot order)."""
        vae = self.net.first_stage_model
        out = []
        with torch.no_grad():
            for start in range(0, len(x0), self.batch_size):
                z = torch.from_numpy(x0[start : start + self.batch_size]).to(self.device) / self.cfg.scale_factor
                x = vae.decode(z.to(self.dtype).contiguous(memory_format=torch.channels_last))
                out.append((x.float() * 0.5 + 0.5).clamp(0.0, 1.0).cpu().numpy())
        spectral = self.model.artifact.spectral
        local = conditions.state.local.numpy().astype(np.float32)
        maps = np.ascontiguousarray(np.broadcast_to(local, (len(x0), *local.shape[1:])))
        return Decoded(
            np.concatenate(out).astype(np.float32),
            np.asarray(spectral["wavelengths_nm"], np.float64),
            float(spectral["scale"]),
            float(spectral["offset"]),
            {"conditions": maps},
        )

    def summary(self, samples_h5: Path, conditions: Conditions) -> tuple[dict, dict]:
        return {"conditions": list(conditions.kinds)}, {
            "generator": {"architecture": "hsigene", "slots": RELEASED_SLOTS}
        }
