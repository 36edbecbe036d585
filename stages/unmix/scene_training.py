"""Training the MSF-Diff scene-based unmixing network (Pan et al., MSF-Diff, Information Fusion 108 (2024) §4.1) with the shared
Trainer, and inferring abundances for external RGB images with it (``unmix infer``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, open_artifact, spectral_block
from ..artifacts.datasets import PatchSet
from ..common import log
from ..common.errors import ArtifactError, ConfigError, InputError
from ..common.georef import no_georeference
from ..common.runtime import resolve_device, seed_everything
from ..spectral import rgb_band_indices
from .artifact import load_unmixing, plot_endmembers, write_abundances_h5, write_endmembers_csv, write_outputs
from .endmembers import extract_endmembers
from .metrics import ReconstructionStats, simplex_stats
from .scene_net import build_scene_net, stretch_rgb, unmixing_loss

WEIGHTS = "scene_net.safetensors"


def rgb_inputs(patches: PatchSet) -> tuple[np.ndarray, list[int]]:
    """The encoder's input Y_bs: bands nearest 640/550/470 nm, each patch stretched."""
    bands = rgb_band_indices(patches.wavelengths_nm)
    rgb = np.stack([stretch_rgb(p[bands]) for p in patches.hsi])
    return rgb, bands


def _resolved_steps(net_cfg: dict, n_train: int) -> int:
    if net_cfg.get("steps"):
        return int(net_cfg["steps"])
    return int(net_cfg["epochs"]) * math.ceil(n_train / int(net_cfg["batch_size"]))


def run(patches: PatchSet, dataset: Path, out: Path, cfg, *, overwrite: bool, resume: bool, dry_run: bool):
    import torch

    from ..training import Trainer, TrainSpec, count_parameters

    bands = patches.hsi.shape[1]
    net_cfg = dict(cfg.scene_net)
    train = patches.subset(patches.split == "train") if patches.split is not None else patches
    net_cfg["steps"] = _resolved_steps(net_cfg, len(train.hsi))
    cfg.scene_net = net_cfg
    seed_everything(cfg.seed)
    model = build_scene_net(net_cfg["channels"], cfg.endmembers, bands)
    if dry_run:  # the parameter counts, for the CLI to print
        return {
            "model": "scene-net",
            "preset": cfg.preset,
            "parameters": {
                "encoder": count_parameters(model.encoder),
                "decoder": count_parameters(model.decoder),
                "total": count_parameters(model),
            },
            "training_steps": net_cfg["steps"],
        }
    writer = ArtifactWriter(out, "unmixing", "unmix", cfg.to_json(), [input_record(dataset)], overwrite)
    if writer.up_to_date():
        log.info("unmix: up to date")
        return writer.artifact
    writer.check_destination()
    device = resolve_device(cfg.device)

    # Decoder initialised from VCA endmembers (the brief's choice; Pan et al., MSF-Diff, Information Fusion 108 (2024) §5.2.1 trains
    # from scratch and relies on the ETV loss instead).
    init = extract_endmembers(patches, cfg)
    with torch.no_grad():
        model.decoder.weight.copy_(torch.from_numpy(init).float()[:, :, None, None])
        model.decoder.bias.zero_()

    rgb_all, band_idx = rgb_inputs(patches)
    train_mask = (patches.split == "train") if patches.split is not None else np.ones(len(patches.hsi), bool)
    x_train = torch.from_numpy(rgb_all[train_mask]).to(device)
    y_train = torch.from_numpy(patches.hsi[train_mask]).to(device)

    def loss_fn(net, step, g):
        idx = torch.randint(0, len(x_train), (int(net_cfg["batch_size"]),), generator=g).to(device)
        x, y = x_train[idx], y_train[idx]
        flips = torch.rand(2, generator=g)
        if flips[0] < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        if flips[1] < 0.5:
            x, y = x.flip(-2), y.flip(-2)
        y_hat, _ = net(x)
        return unmixing_loss(y, y_hat, model.decoder.weight, cfg.alpha, cfg.beta)

    spec = TrainSpec(
        steps=net_cfg["steps"],
        lr=float(net_cfg["lr"]),
        seed=cfg.seed,
        weight_decay=float(net_cfg["weight_decay"]),
        ema_decay=net_cfg.get("ema_decay"),
        checkpoint_every=cfg.checkpoint_every,
    )
    fingerprint = {"config": cfg.to_json(), "inputs": [input_record(dataset)["sha256"]]}
    trainer = Trainer(model, spec, out, device, fingerprint, resume=resume)
    history = trainer.fit(loss_fn, "unmix scene-net")
    model.load_state_dict(trainer.final_state())
    model.eval()

    with torch.no_grad():
        abundances = np.concatenate(
            [
                model.abundances(torch.from_numpy(rgb_all[i : i + 64]).to(device)).cpu().numpy()
                for i in range(0, len(rgb_all), 64)
            ]
        ).astype(np.float32)
    endmembers = model.endmembers()
    stats = ReconstructionStats()
    for i in range(0, len(abundances), 64):
        a = abundances[i : i + 64].astype(np.float64)
        y = np.moveaxis(patches.hsi[i : i + 64], 1, 0).reshape(bands, -1)
        x = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)
        stats.add(y * patches.scale + patches.offset, (endmembers @ x) * patches.scale + patches.offset)
    metrics = stats.result()

    from ..training import save_weights

    with writer.building() as tmp:
        write_outputs(tmp, patches, endmembers, abundances, f"scene-net endmembers (k={cfg.endmembers})")
        save_weights(model.state_dict(), tmp / WEIGHTS)
        writer.spectral = spectral_block(patches.wavelengths_nm, patches.scale, patches.offset)
        writer.metrics = {**metrics, **simplex_stats(abundances), "final_loss": history[-1]["mae"] if history else None}
        writer.extra = {
            "unmixing": {
                "method": "scene-net",
                "k": cfg.endmembers,
                "rgb_bands": band_idx,
                "rgb_wavelengths_nm": [float(patches.wavelengths_nm[i]) for i in band_idx],
                "input_normalisation": "per-image per-channel 2-98 % linear stretch to [0, 1]",
                "channels": net_cfg["channels"],
                "patch_size": int(patches.hsi.shape[-1]),
                "weights": WEIGHTS,
                "history": history,
            }
        }
    trainer.cleanup()
    log.info(f"unmix: RMSE {metrics['reconstruction_rmse']:.4g}, SAD {metrics['reconstruction_sad_rad']:.4f} rad")
    return writer.artifact


# -- unmix infer -----------------------------------------------------------------------------


def read_rgb_image(path: Path) -> np.ndarray:
    """(3, H, W) float32 in the image's own units: PNG/JPEG via OpenCV, GeoTIFF via rasterio."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"RGB image {path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import rasterio

        with no_georeference(), rasterio.open(path) as src:
            if src.count < 3:
                raise InputError(f"{path} has {src.count} bands; unmix infer needs an RGB image (3 bands, R G B)")
            return src.read([1, 2, 3]).astype(np.float32)
    if suffix in (".png", ".jpg", ".jpeg"):
        import cv2

        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"{path} could not be read as an image; give a PNG, JPEG or GeoTIFF")
        if img.ndim != 3 or img.shape[2] < 3:
            raise InputError(f"{path} is not a colour image; unmix infer needs RGB (3 channels)")
        return np.moveaxis(img[:, :, [2, 1, 0]], -1, 0).astype(np.float32)  # BGR(A) → RGB
    raise InputError(f"{path}: unsupported image type {suffix!r}; give PNG, JPEG or GeoTIFF")


def _tiles(height: int, width: int, size: int, stride: int) -> list[tuple[int, int]]:
    from ..ingest import patch_origins

    return [(r, c) for r in patch_origins(height, size, stride) for c in patch_origins(width, size, stride)]


def infer(
    unmixing_path: Path,
    images: list[Path],
    out: Path,
    *,
    size: int | None = None,
    stride: int | None = None,
    device: str = "auto",
    overwrite: bool = False,
):
    """Abundance maps of external RGB images → an ``unmixing`` artifact (abundances +
    the source's endmembers), usable by ``train-diffusion --abundances``."""
    import torch

    from ..training import load_weights

    source = open_artifact(unmixing_path, "unmixing")
    info = source.manifest.get("unmixing", {})
    if info.get("method") != "scene-net" or not source.has(WEIGHTS):
        raise ArtifactError(
            f"{unmixing_path} was not made by `unmix --method scene-net`; unmix infer needs the scene network's weights"
        )
    if not images:
        raise ConfigError("no RGB images given; name one or more PNG, JPEG or GeoTIFF files")
    size = int(size or info["patch_size"])
    stride = int(stride or size)
    if size < 8 or stride < 1:
        raise ConfigError("--size must be >= 8 and --stride >= 1")
    unmixing = load_unmixing(source, with_abundances=False)
    rgbs = [read_rgb_image(p) for p in images]
    for path, rgb in zip(images, rgbs):
        if min(rgb.shape[1:]) < size:
            raise InputError(f"{path} is {rgb.shape[2]}×{rgb.shape[1]} pixels, smaller than --size {size}")
    config = {"size": size, "stride": stride, "images": [Path(p).name for p in images]}
    inputs = [input_record(unmixing_path), *[input_record(p) for p in images]]
    writer = ArtifactWriter(out, "unmixing", "unmix infer", config, inputs, overwrite)
    if writer.up_to_date():
        log.info("unmix infer: up to date")
        return writer.artifact
    writer.check_destination()

    dev = resolve_device(device)
    model = build_scene_net(info["channels"], unmixing.k, len(unmixing.wavelengths_nm))
    model.load_state_dict(load_weights(source.file(WEIGHTS)))
    model.to(dev).eval()
    maps, origins, sources = [], [], []
    with torch.no_grad():
        for index, rgb in enumerate(rgbs):
            a = model.abundances(torch.from_numpy(stretch_rgb(rgb))[None].to(dev))[0].cpu().numpy()
            for r, c in _tiles(a.shape[1], a.shape[2], size, stride):
                maps.append(a[:, r : r + size, c : c + size])
                origins.append((r, c))
                sources.append(index)
    abundances = np.stack(maps).astype(np.float32)
    with writer.building() as tmp:
        write_endmembers_csv(tmp / "endmembers.csv", unmixing.wavelengths_nm, unmixing.endmembers)
        write_abundances_h5(
            tmp / "abundances.h5",
            abundances,
            origin=np.array(origins, np.int64),
            source_image=np.array(sources, np.int64),
        )
        plot_endmembers(
            tmp / "endmembers.png",
            unmixing.wavelengths_nm,
            unmixing.endmembers,
            f"scene-net endmembers (k={unmixing.k})",
        )
        writer.spectral = spectral_block(unmixing.wavelengths_nm, unmixing.scale, unmixing.offset)
        writer.metrics = {"images": len(rgbs), "patches": len(abundances), **simplex_stats(abundances)}
        writer.extra = {
            "unmixing": {"method": "scene-net-infer", "k": unmixing.k, "patch_size": size, "source_method": "scene-net"}
        }
    log.info(f"unmix infer: {len(abundances)} abundance patches from {len(rgbs)} images")
    return writer.artifact
