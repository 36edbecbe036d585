"""``hsigen condition``: HSIGene's control conditions of every source image (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2).

    hsigen condition runs/ip --kinds hed,mlsd,sketch,seg,content,text --out runs/ip-cond
    hsigen condition runs/ip --kinds seg --labels --size 64 --out runs/ip-seg     # class map
    hsigen condition photos/ --kinds hed,seg --size 256 --out runs/photo-cond      # RGB images
    hsigen condition runs/ip --kinds text --text farmland --out runs/ip-text
    hsigen condition runs/ip --kinds hed,sketch --hed-weights ControlNetHED.pth \\
        --backend sketch=pretrained --out runs/ip-hed
    hsigen condition runs/ip --kinds content,text --clip-model ~/models/clip-vit-b32 \\
        --text-file captions.txt --out runs/ip-clip
    hsigen condition runs/ip --kinds mlsd,sketch --mlsd-weights ~/annotators/mlsd_large_512_fp32.pth \\
        --pidinet-weights ~/annotators/table5_pidinet.pth --out runs/ip-annot
    hsigen condition runs/ip --kinds hed,seg,content --encoder runs/ae --out runs/ip-enc   # HSI content
    hsigen condition runs/ip --kinds hed,seg --split val --out runs/ip-val-cond   # held-out patches only
    hsigen condition photos/ --kinds hed,seg,sketch,content --size 256 --workers 8 --out runs/photo-cond
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from .choices import Split
from .options import Device, Json, Out, Overwrite

_HELP = """Compute condition maps (hed, mlsd, sketch, seg) and embeddings (content, text) for
every image of SOURCE: an hsi-dataset or hsi-samples artifact (RGB from the bands nearest
640/550/470 nm) or PNG/JPEG/GeoTIFF images (files or a directory).

Backends (offline unless a weights flag or --backend says otherwise; nothing is downloaded):
hed: offline (multi-scale Gaussian edges) | pretrained (HED network, --hed-weights);
mlsd: offline (OpenCV LSD line segments) | pretrained (M-LSD large, --mlsd-weights);
sketch: offline (Canny contours simplified with Douglas-Peucker) | pretrained (HED edges) |
pidinet (PiDiNet edges, --pidinet-weights);
seg: offline (SLIC + region merge, mean colours) | labels (the dataset's class map, --labels);
content: offline (64-d colour/texture descriptor) | clip (--clip-model) | encoder (pooled
latent statistics of a trained hsigen autoencoder, --encoder; hyperspectral sources only);
text: offline (one-hot over --vocab) | clip (free text, --clip-model).

Local weights are ControlNet annotator files (lllyasviel/Annotators), as .safetensors or
.pth state dicts, loaded with strict parameter names: --hed-weights ControlNetHED.pth,
--mlsd-weights mlsd_large_512_fp32.pth, --pidinet-weights table5_pidinet.pth.
--clip-model: a directory written by CLIPModel.save_pretrained plus the CLIPProcessor
(preprocessor_config.json, tokenizer files). --encoder: an `autoencoder` artifact (kl,
two-stream or vq-rgb) whose wavelength grid the sources cover.

--workers N computes chunks of 32 images in N worker processes (each loads the weights once),
written in image order as they finish: the same files as --workers 0 (this process), and
memory bounded by N × 32 images whatever the number of images."""


def _parse_backends(values: list[str]) -> dict[str, str]:
    from stages.common.errors import ConfigError

    backends = {}
    for value in values or []:
        kind, sep, name = value.partition("=")
        if not sep or not kind.strip() or not name.strip():
            raise ConfigError(f"--backend {value!r}: write KIND=BACKEND, e.g. --backend hed=pretrained")
        backends[kind.strip()] = name.strip()
    return backends


def _applicable(settings: dict[str, dict], kinds: list[str], backends: dict[str, str]) -> dict[str, dict]:
    """Each requested kind's settings that its backend takes; the others are dropped with a warning."""
    from stages.common import log
    from stages.common.errors import ConfigError
    from stages.conditions.extractors import accepted_settings

    kept = {}
    for kind, values in settings.items():
        if kind not in kinds:
            continue
        backend = backends.get(kind, "offline")
        try:
            accepted = accepted_settings(kind, backend)
        except ConfigError:
            continue  # an unknown kind or backend: the stage reports it with the fix
        ignored = sorted(set(values) - set(accepted))
        if ignored:
            log.warn(f"{kind}: the {backend} backend ignores the setting(s) {', '.join(ignored)}")
        kept[kind] = {k: v for k, v in values.items() if k in accepted}
    return kept


def _floats(spec: str, flag: str) -> list[float]:
    from stages.common.errors import ConfigError

    try:
        values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {spec!r}: give comma-separated numbers, e.g. 1,2,4") from None
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"{flag} {spec!r}: give one or more positive numbers")
    return values


def condition(
    sources: Annotated[
        List[Path],
        typer.Argument(
            help="hsi-dataset / hsi-samples artifact, image file(s) or a directory of images.", show_default=False
        ),
    ],
    out: Out = ...,
    kinds: Annotated[
        str, typer.Option("--kinds", help="Comma-separated: hed, mlsd, sketch, seg, content, text.")
    ] = "hed,mlsd,sketch,seg,content,text",
    size: Annotated[
        Optional[int],
        typer.Option("--size", help="Resize every image to SIZE×SIZE before extraction (default: the source's size)."),
    ] = None,
    split: Annotated[
        Optional[Split],
        typer.Option("--split", help="Dataset sources: only this split's patches (e.g. val: held-out conditions)."),
    ] = None,
    backend: Annotated[
        Optional[List[str]],
        typer.Option("--backend", help="KIND=BACKEND, repeatable (e.g. sketch=pretrained, seg=labels)."),
    ] = None,
    hed_weights: Annotated[
        Optional[Path],
        typer.Option("--hed-weights", help="Local HED weights file; selects the pretrained hed backend."),
    ] = None,
    mlsd_weights: Annotated[
        Optional[Path],
        typer.Option(
            "--mlsd-weights",
            help="Local M-LSD large weights (mlsd_large_512_fp32.pth); selects the pretrained mlsd backend.",
        ),
    ] = None,
    pidinet_weights: Annotated[
        Optional[Path],
        typer.Option(
            "--pidinet-weights", help="Local PiDiNet weights (table5_pidinet.pth); selects the pidinet sketch backend."
        ),
    ] = None,
    clip_model: Annotated[
        Optional[Path],
        typer.Option(
            "--clip-model", help="Local CLIP save_pretrained directory; selects the clip content/text backends."
        ),
    ] = None,
    encoder: Annotated[
        Optional[Path],
        typer.Option("--encoder", help="An autoencoder artifact; selects the encoder content backend (HSI sources)."),
    ] = None,
    labels: Annotated[
        bool,
        typer.Option(
            "--labels", help="seg = the dataset's label map colour-coded by class (same as --backend seg=labels)."
        ),
    ] = False,
    vocab: Annotated[
        Optional[str],
        typer.Option(
            "--vocab",
            help="Comma-separated text categories (default: farmland, city building, architecture, wasteland).",
        ),
    ] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Text for every image.")] = None,
    text_file: Annotated[
        Optional[Path],
        typer.Option("--text-file", help="One text per image, one per line in index order (blank = none)."),
    ] = None,
    hed_sigmas: Annotated[
        Optional[str],
        typer.Option(
            "--hed-sigmas", help="Offline hed: Gaussian scales in pixels [default: 1,2,4].", show_default=False
        ),
    ] = None,
    hed_saturation: Annotated[
        Optional[float],
        typer.Option(
            "--hed-saturation", help="Offline hed: step height mapped to 1 [default: 0.6].", show_default=False
        ),
    ] = None,
    mlsd_min_length: Annotated[
        Optional[float],
        typer.Option(
            "--mlsd-min-length",
            help="Shortest line kept: fraction of the shorter side if < 1, else pixels [default: 0.1].",
            show_default=False,
        ),
    ] = None,
    mlsd_score: Annotated[
        Optional[float],
        typer.Option(
            "--mlsd-score", help="Pretrained mlsd: centre score threshold [default: 0.1].", show_default=False
        ),
    ] = None,
    mlsd_distance: Annotated[
        Optional[float],
        typer.Option(
            "--mlsd-distance",
            help="Pretrained mlsd: shortest segment in TP-map pixels [default: 0.1].",
            show_default=False,
        ),
    ] = None,
    detect_resolution: Annotated[
        Optional[int],
        typer.Option(
            "--detect-resolution",
            help="Pretrained mlsd / pidinet sketch: side the network runs at [default: 512].",
            show_default=False,
        ),
    ] = None,
    sketch_threshold: Annotated[
        Optional[float],
        typer.Option(
            "--sketch-threshold",
            help="Network sketch backends: edge probability kept as a stroke [default: 0.5].",
            show_default=False,
        ),
    ] = None,
    content_grid: Annotated[
        Optional[int],
        typer.Option(
            "--content-grid",
            help="Encoder content: also the channel means of a G×G grid of cells (0 = only the "
            "orientation-free mean/std) [default: 0].",
            show_default=False,
        ),
    ] = None,
    sketch_epsilon: Annotated[
        Optional[float],
        typer.Option(
            "--sketch-epsilon", help="Sketch: Douglas-Peucker tolerance in pixels [default: 1.5].", show_default=False
        ),
    ] = None,
    seg_region_pixels: Annotated[
        Optional[int],
        typer.Option(
            "--seg-region-pixels", help="Offline seg: pixels per SLIC superpixel [default: 64].", show_default=False
        ),
    ] = None,
    seg_threshold: Annotated[
        Optional[float],
        typer.Option(
            "--seg-threshold",
            help="Offline seg: merge neighbours whose mean colours differ less (0-1) [default: 0.08].",
            show_default=False,
        ),
    ] = None,
    stretch: Annotated[
        float, typer.Option("--stretch", help="Percent clipped at each end when HSI bands become RGB.")
    ] = 2.0,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Worker processes computing chunks of images (0: this process). Same output for any N.",
        ),
    ] = 0,
    device: Device = "cpu",
    json_out: Json = False,
    overwrite: Overwrite = False,
):
    from stages.common.errors import ConfigError
    from stages.conditions.stage import ConditionConfig, run

    kind_list = [k.strip() for k in kinds.split(",") if k.strip()]
    backends = _parse_backends(backend or [])
    if labels:
        if backends.get("seg", "labels") != "labels":
            raise ConfigError("--labels conflicts with --backend seg=" + backends["seg"])
        backends["seg"] = "labels"
    if hed_weights is not None:
        backends.setdefault("hed", "pretrained")
    if mlsd_weights is not None:
        backends.setdefault("mlsd", "pretrained")
    if pidinet_weights is not None:
        backends.setdefault("sketch", "pidinet")
    if encoder is not None:
        backends.setdefault("content", "encoder")
    if clip_model is not None:
        backends.setdefault("content", "clip")
        backends.setdefault("text", "clip")
    settings: dict[str, dict] = {}

    def put(kind: str, key: str, value) -> None:
        if value is not None:
            settings.setdefault(kind, {})[key] = value

    put("hed", "sigmas", None if hed_sigmas is None else _floats(hed_sigmas, "--hed-sigmas"))
    put("hed", "saturation", hed_saturation)
    put("mlsd", "min_length", mlsd_min_length)
    put("mlsd", "score_threshold", mlsd_score)
    put("mlsd", "distance_threshold", mlsd_distance)
    put("mlsd", "resolution", detect_resolution)
    put("sketch", "resolution", detect_resolution)
    put("sketch", "threshold", sketch_threshold)
    put("sketch", "epsilon", sketch_epsilon)
    put("seg", "region_pixels", seg_region_pixels)
    put("seg", "threshold", seg_threshold)
    put("content", "grid", content_grid)
    put("text", "vocab", vocab)
    cfg = ConditionConfig(
        kinds=kind_list,
        backends=backends,
        settings=_applicable(settings, kind_list, backends),
        size=size,
        stretch_percent=stretch,
        hed_weights=None if hed_weights is None else str(hed_weights),
        mlsd_weights=None if mlsd_weights is None else str(mlsd_weights),
        pidinet_weights=None if pidinet_weights is None else str(pidinet_weights),
        clip_model=None if clip_model is None else str(clip_model),
        encoder=None if encoder is None else str(encoder),
        device=device,
        text=text,
        text_file=None if text_file is None else str(text_file),
        split=None if split is None else split.value,
        workers=workers,
    )
    artifact = run(list(sources), out, cfg, overwrite=overwrite)
    if json_out:
        import json

        typer.echo(
            json.dumps(
                {"path": str(artifact.path), "metrics": artifact.metrics, "kinds": artifact.config.get("kinds", {})},
                indent=2,
            )
        )
    else:
        typer.echo(str(artifact.path))


condition.__doc__ = _HELP


def register(app: typer.Typer) -> None:
    app.command("condition", help=_HELP)(condition)
