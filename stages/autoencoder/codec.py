"""``train-ae encode`` / ``decode``: dataset patches → a latents file → an ``hsi-samples`` artifact.

``latents.h5`` (written atomically, a plain HDF5 file rather than an artifact):
``latents`` (N, C, h, w) float32 scaled latents, ``origin``/``split`` copied from the
dataset, ``rgb`` (N, 3, H, W) for vq-rgb (the decoder's condition) and, for two-stream,
the label maps are encoded into the latent itself. Attributes name the autoencoder (path,
manifest sha256, kind, scaling factor) so ``decode`` can refuse latents of another model.

``decode`` writes the same files as every other generator (``stages/artifacts/samples.py``):
``samples.h5`` (``hsi``; two-stream adds ``labels`` and, for change pairs, ``hsi_t2``),
one file per sample in physical units (``--format tif|envi|mat``), label GeoTIFFs and
previews.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, open_artifact, spectral_block
from ..artifacts.datasets import load_patches
from ..common import log
from ..common.errors import ArtifactError, ConfigError, InputError, OutputExistsError
from ..common.runtime import resolve_device
from .data import check_wavelengths, class_index, load_second_images
from .io import load_autoencoder


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def encode(
    autoencoder,
    dataset,
    out,
    split: str | None = None,
    pairs=None,
    device: str = "auto",
    batch_size: int = 16,
    overwrite: bool = False,
) -> Path:
    import h5py
    import torch

    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    if out.exists() and out.is_dir():
        raise OutputExistsError(f"--out {out} is a directory; give a file name such as latents.h5")
    ae_artifact = open_artifact(autoencoder, "autoencoder", role="autoencoder")
    patches = load_patches(dataset, split)
    check_wavelengths(ae_artifact.spectral["wavelengths_nm"], patches.wavelengths_nm, f"dataset {dataset}")
    dev = resolve_device(device)
    model = load_autoencoder(ae_artifact, dev)
    # Express the data in the autoencoder's normalisation (physical values are what match).
    hsi = ((patches.physical() - model.offset) / model.scale).astype(np.float32)
    kind = ae_artifact.manifest["autoencoder"]["kind"]
    labels = hsi_t2 = None
    if kind == "two-stream":
        if patches.labels is None:
            raise InputError(
                f"the two-stream autoencoder also encodes masks: {dataset} has no labels; "
                "re-run ingest with --labels FILE"
            )
        labels = class_index(patches.labels, model.classes)
        if model.pairs:
            if pairs is None:
                raise InputError(
                    "this two-stream autoencoder was trained with --pairs: give --pairs DATASET_T2 "
                    "(the co-registered second-date dataset)"
                )
            other = load_second_images(pairs, split)
            if other.hsi.shape != patches.hsi.shape:
                raise InputError(f"--pairs {pairs}: patches {other.hsi.shape} do not match {patches.hsi.shape}")
            hsi_t2 = ((other.physical() - model.offset) / model.scale).astype(np.float32)
    latents, rgbs = [], []
    with torch.no_grad():
        for sl in _batches(len(hsi), batch_size):
            x = torch.from_numpy(hsi[sl]).to(dev)
            if kind == "two-stream":
                extra = [torch.from_numpy(hsi_t2[sl]).to(dev)] if hsi_t2 is not None else []
                z = model.encode(x, torch.from_numpy(labels[sl]).to(dev), *extra)
            else:
                z = model.encode(x)
            if kind == "vq-rgb":
                rgbs.append(model.rgb_condition(x).cpu().numpy())
            latents.append(z.float().cpu().numpy())
    tmp = out.parent / f".hsigen-tmp-{out.name}-{uuid.uuid4().hex[:8]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("latents", data=np.concatenate(latents))
            if rgbs:
                h5.create_dataset("rgb", data=np.concatenate(rgbs))
            if patches.origin is not None:
                h5.create_dataset("origin", data=patches.origin)
            if patches.split is not None:
                h5.create_dataset("split", data=patches.split.astype("S"))
            h5.attrs.update(
                {
                    "autoencoder": str(ae_artifact.path),
                    "autoencoder_sha256": ae_artifact.sha256(),
                    "kind": kind,
                    "scaling_factor": model.scaling_factor,
                    "dataset": str(dataset),
                    "factor": model.factor,
                }
            )
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info(f"encode: {len(hsi)} patches → latents {tuple(np.concatenate(latents).shape)} in {out}")
    return out


def read_latents(path) -> dict:
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"latents file {path} does not exist; make it with hsigen train-ae encode")
    try:
        with h5py.File(path, "r") as h5:
            if "latents" not in h5:
                raise InputError(f"{path} has no 'latents' dataset; make it with hsigen train-ae encode")
            return {
                "latents": h5["latents"][...],
                "rgb": h5["rgb"][...] if "rgb" in h5 else None,
                "attrs": dict(h5.attrs),
            }
    except OSError as exc:
        raise InputError(f"{path} is not an HDF5 latents file ({exc}); make it with hsigen train-ae encode") from exc


def decode(
    autoencoder,
    latents_file,
    out,
    device: str = "auto",
    batch_size: int = 16,
    overwrite: bool = False,
    fmt: str = "tif",
):
    """Latents → an ``hsi-samples`` artifact (``samples.h5``, per-sample files, previews)."""
    import torch

    from ..artifacts.samples import FORMATS, write_samples

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    ae_artifact = open_artifact(autoencoder, "autoencoder", role="autoencoder")
    data = read_latents(latents_file)
    if data["attrs"].get("autoencoder_sha256") not in (None, ae_artifact.sha256()):
        raise ArtifactError(
            f"{latents_file} was encoded by another autoencoder ({data['attrs'].get('autoencoder')}); "
            f"decode it with that one or re-encode with {autoencoder}"
        )
    kind = ae_artifact.manifest["autoencoder"]["kind"]
    if kind == "vq-rgb" and data["rgb"] is None:
        raise InputError(
            f"{latents_file} has no 'rgb' condition images, which the vq-rgb decoder needs; "
            "re-encode with hsigen train-ae encode"
        )
    writer = ArtifactWriter(
        out,
        "hsi-samples",
        "train-ae decode",
        {"batch_size": batch_size, "format": fmt},
        [input_record(autoencoder), input_record(latents_file)],
        overwrite=overwrite,
    )
    if writer.up_to_date():
        log.info("train-ae decode: up to date")
        return writer.artifact
    writer.check_destination()
    dev = resolve_device(device)
    model = load_autoencoder(ae_artifact, dev)
    z_all = data["latents"].astype(np.float32)
    expected = model.joint_latent_channels if kind == "two-stream" else model.latent_channels
    if z_all.ndim != 4 or z_all.shape[1] != expected:
        raise InputError(
            f"{latents_file}: latents of shape {z_all.shape} do not fit this {kind} autoencoder "
            f"({expected} channels); re-encode with hsigen train-ae encode"
        )
    hsi, hsi_t2, masks = [], [], []
    with torch.no_grad():
        for sl in _batches(len(z_all), batch_size):
            z = torch.from_numpy(z_all[sl]).to(dev)
            if kind == "vq-rgb":
                hsi.append(model.decode(z, torch.from_numpy(data["rgb"][sl]).to(dev)).cpu().numpy())
            elif kind == "two-stream":
                *images, probs = model.decode(z)
                hsi.append(images[0].cpu().numpy())
                if len(images) > 1:
                    hsi_t2.append(images[1].cpu().numpy())
                masks.append(model.labels_from_probs(probs))
            else:
                hsi.append(model.decode(z).cpu().numpy())
    arrays = {}
    if masks:
        arrays["labels"] = np.concatenate(masks).astype(np.int32)
    if hsi_t2:
        arrays["hsi_t2"] = np.concatenate(hsi_t2).astype(np.float32)
    hsi_arr = np.concatenate(hsi).astype(np.float32)
    with writer.building() as tmp:
        summary = write_samples(tmp, hsi_arr, model.wavelengths_nm, model.scale, model.offset, fmt, **arrays)
        writer.spectral = spectral_block(model.wavelengths_nm, model.scale, model.offset)
        writer.metrics = summary
        writer.extra = {"samples": {"count": int(len(hsi_arr)), "generator": f"train-ae decode ({kind})"}}
    log.info(f"train-ae decode: {len(hsi_arr)} patches → {out}")
    return writer.artifact
