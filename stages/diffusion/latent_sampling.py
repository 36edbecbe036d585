"""Sampling a latent ``diffusion-model``: conditions from files / a conditions artifact /
``--content`` / ``--text``, reverse diffusion with classifier-free guidance (hsigene.txt eq. 2:
DDIM; DDPM ancestral; DPM-Solver++), decoding with the model's autoencoder.

Composable control: any subset of the kinds the model was trained with may be given; the
others are absent (their presence flags are 0), exactly as condition dropout showed them in
training. Nothing given = unconditional sampling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import ConfigError, InputError

LATENT_SAMPLERS = ("ddim", "dpm", "ddpm")
_KIND_IN_NAME = re.compile(r"[a-z]+")


@dataclass
class ConditionRequest:
    """What the user asked for (validated against the model by ``resolve_conditions``)."""

    files: list[str] = field(default_factory=list)     # "hed.png" | "KIND=FILE"
    conditions: str | None = None                      # a conditions artifact
    content: str | None = None                         # an image for the content embedding
    text: str | None = None

    def empty(self) -> bool:
        return not self.files and self.conditions is None and self.content is None and self.text is None


@dataclass
class ResolvedConditions:
    maps: np.ndarray                  # (n, 6, S, S)
    keep: np.ndarray                  # (n, 6) 0/1 per control.CONDITION_KINDS
    embeddings: dict                  # kind → (n, D)
    rgb: np.ndarray | None            # (n, 3, S, S) normalised (HyperLDM) or None
    rgb_png: list | None              # uint8 RGB per sample, saved beside it (HyperLDM)
    inputs: list[Path]                # files/artifacts read (manifest inputs)
    described: dict                   # plain description for the manifest


def kind_of(spec: str, allowed) -> tuple[str, Path]:
    """``KIND=FILE``, a file named after its kind (``hed.png``, ``seg_03.png``), or a map inside
    a conditions artifact's kind folder (``cond/seg/000070.png``)."""
    if "=" in spec:
        kind, _, path = spec.partition("=")
        kind = kind.strip().lower()
        if kind not in allowed:
            raise ConfigError(f"--cond {spec}: unknown condition kind {kind!r}; map kinds are {', '.join(allowed)}")
        return kind, Path(path)
    path = Path(spec)
    words = _KIND_IN_NAME.findall(path.stem.lower()) + [path.parent.name.lower()]
    kind = next((w for w in words if w in allowed), None)
    if kind is None:
        raise ConfigError(f"--cond {spec}: cannot tell the condition kind from the file name; name the file after "
                          f"its kind (hed.png, seg.png …) or write KIND=FILE with KIND one of {', '.join(allowed)}")
    return kind, path


def read_map(kind: str, path: Path, size: int) -> np.ndarray:
    """A condition PNG as (C, size, size) float32 in [0, 1] (grey for edge-like kinds, RGB for seg)."""
    from ..conditions.common import MAP_CHANNELS, quantise
    from ..conditions.sources import read_rgb

    if not path.is_file():
        raise InputError(f"--cond {kind}={path}: the file does not exist")
    rgb = read_rgb(path)
    if rgb.shape[:2] != (size, size):
        raise InputError(f"--cond {kind}={path} is {rgb.shape[1]}×{rgb.shape[0]} pixels but the samples are "
                         f"{size}×{size}; resize it (e.g. `hsigen condition IMAGE --size {size}`) or pass --size")
    values = rgb.astype(np.float32) / 255.0
    if MAP_CHANNELS[kind] == 1:
        values = values.mean(axis=-1)
    return quantise(values)


def _embed(kind: str, settings: dict, rgb=None, text: str | None = None) -> np.ndarray:
    from ..conditions import make_extractor

    backend = settings.get("backend", "offline")
    if kind == "content":
        extractor = make_extractor("content", backend, clip_model=settings.get("model"))
        return extractor(rgb)
    options = {"vocab": settings["vocab"]} if backend == "offline" and settings.get("vocab") else {}
    return make_extractor("text", backend, clip_model=settings.get("model"), **options).embed([text])[0]


def resolve_conditions(model, request: ConditionRequest, n: int, size: int) -> ResolvedConditions:
    """Read and check every condition BEFORE anything is written."""
    from ..conditions.sources import read_rgb, resize_rgb
    from .control import CONDITION_KINDS, LOCAL_KINDS, LOCAL_MAP_CHANNELS, LOCAL_SLOTS

    cfg = model.config
    trained_local = cfg["conditions"]["local"]
    trained_global = cfg["conditions"]["global"]
    rgb_mode = bool(cfg["model"]["rgb_condition"])
    map_kinds = tuple(LOCAL_KINDS) + (("rgb",) if rgb_mode else ())
    maps = np.zeros((n, LOCAL_MAP_CHANNELS, size, size), np.float32)
    keep = np.zeros((n, len(CONDITION_KINDS)), np.float32)
    embeddings = {k: np.zeros((n, int(v["dim"])), np.float32) for k, v in trained_global.items()}
    rgb_png = None
    inputs: list[Path] = []
    described: dict = {"files": {}, "conditions": None, "content": None, "text": None}

    def need(kind: str) -> None:
        if kind != "rgb" and kind not in trained_local and kind not in trained_global:
            known = ", ".join(trained_local + list(trained_global)) or "no conditions (unconditional)"
            raise ConfigError(f"this model was trained without {kind!r} conditions; it knows {known}")

    if request.conditions is not None:
        from ..conditions.io import load_conditions

        if request.files:
            raise ConfigError("give condition files (--cond) or a conditions artifact, not both")
        cond = load_conditions(request.conditions)
        if (cond.index["height"], cond.index["width"]) != (size, size):
            raise InputError(f"{request.conditions} holds {cond.index['height']}×{cond.index['width']} maps but the "
                             f"samples are {size}×{size}; rebuild it with --size {size} or pass --size")
        usable = [k for k in list(cond.maps) + list(cond.embeddings) if k in trained_local or k in trained_global]
        if not usable:
            raise ConfigError(f"{request.conditions} holds none of the kinds this model knows "
                              f"({', '.join(trained_local + list(trained_global))})")
        rows = np.arange(n) % len(cond)
        for kind in usable:
            j = CONDITION_KINDS.index(kind)
            keep[:, j] = 1
            if kind in cond.maps:
                maps[:, LOCAL_SLOTS[kind]] = cond.maps[kind][rows]
            else:
                if cond.embeddings[kind].shape[1] != embeddings[kind].shape[1]:
                    raise InputError(f"{request.conditions}: {kind} embeddings have {cond.embeddings[kind].shape[1]} "
                                     f"dimensions, the model {embeddings[kind].shape[1]}; use the same backend")
                embeddings[kind] = cond.embeddings[kind][rows].astype(np.float32)
        if rgb_mode:
            rgb_png = [_read_png_rgb(cond.artifact.file(cond.items[r]["files"]["rgb"])) for r in rows]
        inputs.append(Path(request.conditions))
        described["conditions"] = {"path": str(request.conditions), "kinds": usable, "items": rows.tolist()}

    seen = set()
    for spec in request.files:
        kind, path = kind_of(spec, map_kinds)
        if kind in seen:
            raise ConfigError(f"--cond gives {kind} twice; give each kind once")
        seen.add(kind)
        need(kind)
        if kind == "rgb":
            if not path.is_file():
                raise InputError(f"--cond rgb={path}: the file does not exist")
            image = read_rgb(path)
            if image.shape[:2] != (size, size):
                raise InputError(f"--cond rgb={path} is {image.shape[1]}×{image.shape[0]} pixels but the samples "
                                 f"are {size}×{size}; resize it or pass --size")
            rgb_png = [image] * n
        else:
            maps[:, LOCAL_SLOTS[kind]] = read_map(kind, path, size)[None]
            keep[:, CONDITION_KINDS.index(kind)] = 1
        inputs.append(path)
        described["files"][kind] = str(path)

    if request.content is not None:
        need("content")
        path = Path(request.content)
        if not path.is_file():
            raise InputError(f"--content {path}: the file does not exist")
        vector = _embed("content", trained_global["content"], rgb=resize_rgb(read_rgb(path), size))
        embeddings["content"][:] = vector[None]
        keep[:, CONDITION_KINDS.index("content")] = 1
        inputs.append(path)
        described["content"] = str(path)
    if request.text is not None:
        need("text")
        embeddings["text"][:] = _embed("text", trained_global["text"], text=request.text)[None]
        keep[:, CONDITION_KINDS.index("text")] = 1
        described["text"] = request.text

    rgb = None
    if rgb_mode:
        if rgb_png is None:
            raise ConfigError("this HyperLDM model decodes with an RGB image: give --cond rgb=IMAGE (uint8 RGB of the "
                              f"sample size {size}×{size}) or a conditions artifact (its rgb/ images)")
        from .spaces.latent import rgb_from_png

        rgb = np.stack([rgb_from_png(im, cfg["rgb"]) for im in rgb_png])
    described["kinds"] = [k for j, k in enumerate(CONDITION_KINDS) if keep[:, j].any()]
    return ResolvedConditions(maps, keep, embeddings, rgb, rgb_png, inputs, described)


def _read_png_rgb(path: Path) -> np.ndarray:
    from ..conditions.sources import read_rgb

    return read_rgb(path)


def make_scheduler(kind: str, training_config: dict):
    """ddim (hsigene.txt eq. 2, η = 0), ddpm (ancestral), dpm (DPM-Solver++ multistep)."""
    from diffusers import DPMSolverMultistepScheduler

    from .schedules import sampling_scheduler

    if kind not in LATENT_SAMPLERS:
        raise ConfigError(f"--sampler {kind!r}: choose one of {', '.join(LATENT_SAMPLERS)}")
    if kind == "dpm":
        return DPMSolverMultistepScheduler.from_config(training_config)
    return sampling_scheduler(kind, training_config)


def denoise_latents(denoiser, scheduler, conditions: ResolvedConditions, shape, steps: int, seed: int,
                    batch_size: int, guidance: float, device, progress=None) -> np.ndarray:
    """Reverse diffusion for every sample; sample i's noise comes from its own generator
    (seed, i), so results do not depend on the batch size."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    from .control import ConditionBatch, guided_noise
    from .reverse import sample_generators

    n = conditions.maps.shape[0]
    out = []
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        gens = sample_generators(seed, range(start, stop))
        cond = ConditionBatch(to(conditions.maps[start:stop]), to(conditions.keep[start:stop]),
                              {k: to(v[start:stop]) for k, v in conditions.embeddings.items()},
                              to(conditions.rgb[start:stop]) if conditions.rgb is not None else None)
        noise = randn_tensor((stop - start, *shape), generator=gens, device=torch.device("cpu")).to(device)
        x = reverse_diffusion(
            scheduler, noise, steps,
            lambda model_in, t, cond=cond: guided_noise(denoiser, model_in, t.to(device), cond, guidance),
            step_kwargs=lambda i, gens=gens: {"generator": gens}, progress=progress)
        out.append(x.float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def reverse_diffusion(scheduler, noise, steps: int, model_fn, step_kwargs=None, progress=None):
    """The reverse process from x_T = ``noise`` · σ_init (hsigene.txt eq. 2 for DDIM): for each
    of the ``steps`` timesteps, ``model_fn(model_input, t)`` predicts the noise (or v / x0) and
    ``scheduler.step`` moves to the previous timestep. ``step_kwargs(i)`` gives extra arguments
    of step i (a generator for ancestral noise, or DDIM's ``eta`` / ``variance_noise``)."""
    import torch

    scheduler.set_timesteps(steps)
    x = noise * scheduler.init_noise_sigma
    with torch.no_grad():
        for i, t in enumerate(scheduler.timesteps):
            model_in = scheduler.scale_model_input(x, t)
            prediction = model_fn(model_in, t)
            x = scheduler.step(prediction, t, x, **(step_kwargs(i) if step_kwargs else {})).prev_sample
            if progress is not None:
                progress.advance(x.shape[0])
    return x


def decode_latents(model, latents: np.ndarray, rgb: np.ndarray | None, device, batch_size: int = 16) -> np.ndarray:
    import torch

    from .spaces.latent import load_model_autoencoder

    ae = load_model_autoencoder(model, device)
    out = []
    with torch.no_grad():
        for start in range(0, len(latents), batch_size):
            z = torch.from_numpy(latents[start:start + batch_size]).to(device)
            if rgb is not None:
                x = ae.decode(z, torch.from_numpy(rgb[start:start + batch_size]).to(device))
            else:
                x = ae.decode(z)
            out.append(x.float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def generate(model, request: ConditionRequest, n: int, size: int, sampler: str, steps: int, seed: int,
             batch_size: int, guidance: float, device, conditions: ResolvedConditions | None = None):
    """(hsi (n, B, size, size) normalised, latents, conditions) — the whole generator, in memory."""
    from .latent_training import load_denoiser

    if conditions is None:
        conditions = resolve_conditions(model, request, n, size)
    factor = int(model.config["autoencoder"]["factor"])
    denoiser = load_denoiser(model, device)
    scheduler = make_scheduler(sampler, model.training_scheduler_config())
    shape = (model.channels, size // factor, size // factor)
    with log.progress(f"sample ({sampler}, {steps} steps)", n * steps) as bar:
        latents = denoise_latents(denoiser, scheduler, conditions, shape, steps, seed, batch_size, guidance, device,
                                  progress=bar)
    hsi = decode_latents(model, latents, conditions.rgb, device, batch_size)
    return hsi, latents, conditions


def run_latent_sample(model, model_path, out, cfg, request: ConditionRequest, guidance: float, device: str,
                      overwrite: bool):
    """``hsigen sample`` for a latent model → an ``hsi-samples`` artifact. ``cfg`` is the
    sampling stage's ``SampleConfig`` (n, sampler, steps, seed, batch_size, size, format)."""
    from dataclasses import asdict

    from ..artifacts import ArtifactWriter, input_record, spectral_block
    from ..common.runtime import resolve_device
    from ..conditions.common import to_uint8
    from ..artifacts.samples import FORMATS, write_samples
    from ..spectral import save_png
    from .control import CONDITION_KINDS, LOCAL_KINDS, LOCAL_SLOTS

    if cfg.format not in FORMATS:
        raise ConfigError(f"--format {cfg.format!r}: choose tif, envi or mat")
    if cfg.n < 1 or cfg.batch_size < 1:
        raise ConfigError("-n and --batch-size must be at least 1")
    if guidance < 0:
        raise ConfigError("--guidance must be >= 0 (1 = no guidance, the paper-style default is 2-7.5)")
    total = int(model.training_scheduler_config()["num_train_timesteps"])
    steps = cfg.steps or (50 if cfg.sampler in ("ddim", "dpm") else total)
    if not 1 <= steps <= total:
        raise ConfigError(f"--steps {steps}: the model was trained with {total} diffusion steps; choose 1..{total}")
    factor = int(model.config["autoencoder"]["factor"])
    size = cfg.size or model.sample_size * factor
    multiple = factor * model.downsample_factor
    if size % multiple:
        raise ConfigError(f"--size {size} must be a multiple of {multiple} for this model (AE f = {factor})")
    make_scheduler(cfg.sampler, model.training_scheduler_config())            # validates --sampler
    conditions = resolve_conditions(model, request, cfg.n, size)

    recorded = {**asdict(cfg), "steps": steps, "size": size, "space": model.space, "guidance": float(guidance),
                "conditions": conditions.described}
    recorded.pop("batch_size")
    records = [input_record(model_path)] + [input_record(p) for p in conditions.inputs]
    writer = ArtifactWriter(Path(out), "hsi-samples", "sample", recorded, records, overwrite)
    if writer.up_to_date():
        log.info("sample: up to date")
        return writer.artifact
    writer.check_destination()

    dev = resolve_device(device)
    hsi, _, _ = generate(model, request, cfg.n, size, cfg.sampler, steps, cfg.seed, cfg.batch_size, guidance, dev,
                         conditions=conditions)
    spectral = model.artifact.spectral
    wl = np.asarray(spectral["wavelengths_nm"], np.float64)
    scale, offset = float(spectral["scale"]), float(spectral["offset"])
    extra = {"conditions": conditions.maps, "condition_present": conditions.keep}
    for kind, values in conditions.embeddings.items():
        extra[f"condition_{kind}"] = values
    with writer.building() as tmp:
        summary = write_samples(tmp, hsi, wl, scale, offset, cfg.format, **extra)
        # The conditions used, next to each sample (samples/sample_NNNN_<kind>.png).
        for i in range(cfg.n):
            for j, kind in enumerate(LOCAL_KINDS):
                if conditions.keep[i, j]:
                    image = to_uint8(conditions.maps[i, LOCAL_SLOTS[kind]])
                    path = tmp / "samples" / f"sample_{i:04d}_{kind}.png"
                    if image.ndim == 3:
                        save_png(path, image)
                    else:
                        save_png(path, np.repeat(image[..., None], 3, axis=-1))
            if conditions.rgb_png is not None:
                save_png(tmp / "samples" / f"sample_{i:04d}_rgb.png", conditions.rgb_png[i])
        writer.spectral = spectral_block(wl, scale, offset)
        writer.metrics = {**summary, "conditions": conditions.described["kinds"]}
        writer.extra = {"condition_kinds": list(CONDITION_KINDS)}
    log.info(f"sample: {cfg.n} samples ({', '.join(conditions.described['kinds']) or 'unconditional'}) of "
             f"{len(wl)} bands × {size}×{size} → {out}")
    return writer.artifact
