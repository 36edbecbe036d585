"""``train-ae encode`` / ``decode``: dataset patches → a latents file → an ``hsi-samples`` artifact.

``latents.h5`` (written atomically, a plain HDF5 file rather than an artifact):
``latents`` (N, C, h, w) float32 scaled latents, ``origin``/``split`` copied from the
dataset, ``rgb`` (N, 3, H, W) for vq-rgb (the decoder's condition) and, for two-stream,
the label maps are encoded into the latent itself. Attributes name the autoencoder (path,
manifest sha256, kind, scaling factor) so ``decode`` can refuse latents of another model.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactWriter, input_record, open_artifact, spectral_block
from ..artifacts.datasets import load_patches
from ..common import log
from ..common.errors import ArtifactError, InputError, OutputExistsError
from ..common.runtime import resolve_device
from .data import check_wavelengths, class_index
from .io import load_autoencoder


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def encode(autoencoder, dataset, out, split: str | None = None, pairs=None, device: str = "auto",
           batch_size: int = 16, overwrite: bool = False) -> Path:
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
    labels = hsi_b = None
    if kind == "two-stream":
        if patches.labels is None:
            raise InputError(f"the two-stream autoencoder also encodes masks: {dataset} has no labels; "
                             "re-run ingest with --labels FILE")
        labels = class_index(patches.labels, model.classes)
        if model.pairs:
            if pairs is None:
                raise InputError("this two-stream autoencoder was trained with --pairs: give --pairs DATASET_B")
            other = load_patches(pairs, split)
            if other.hsi.shape != patches.hsi.shape:
                raise InputError(f"--pairs {pairs}: patches {other.hsi.shape} do not match {patches.hsi.shape}")
            hsi_b = ((other.physical() - model.offset) / model.scale).astype(np.float32)
    latents, rgbs = [], []
    with torch.no_grad():
        for sl in _batches(len(hsi), batch_size):
            x = torch.from_numpy(hsi[sl]).to(dev)
            if kind == "two-stream":
                extra = [torch.from_numpy(hsi_b[sl]).to(dev)] if hsi_b is not None else []
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
            h5.attrs.update({"autoencoder": str(ae_artifact.path), "autoencoder_sha256": ae_artifact.sha256(),
                             "kind": kind, "scaling_factor": model.scaling_factor, "dataset": str(dataset),
                             "factor": model.factor})
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
            return {"latents": h5["latents"][...], "rgb": h5["rgb"][...] if "rgb" in h5 else None,
                    "attrs": dict(h5.attrs)}
    except OSError as exc:
        raise InputError(f"{path} is not an HDF5 latents file ({exc}); make it with hsigen train-ae encode") from exc


def decode(autoencoder, latents_file, out, device: str = "auto", batch_size: int = 16, overwrite: bool = False):
    """Latents → an ``hsi-samples`` artifact (``samples.h5`` normalised units + previews)."""
    import torch

    from ..spectral import false_colour, save_png

    ae_artifact = open_artifact(autoencoder, "autoencoder", role="autoencoder")
    data = read_latents(latents_file)
    if data["attrs"].get("autoencoder_sha256") not in (None, ae_artifact.sha256()):
        raise ArtifactError(f"{latents_file} was encoded by another autoencoder ({data['attrs'].get('autoencoder')}); "
                            f"decode it with that one or re-encode with {autoencoder}")
    kind = ae_artifact.manifest["autoencoder"]["kind"]
    if kind == "vq-rgb" and data["rgb"] is None:
        raise InputError(f"{latents_file} has no 'rgb' condition images, which the vq-rgb decoder needs; "
                         "re-encode with hsigen train-ae encode")
    writer = ArtifactWriter(out, "hsi-samples", "train-ae decode", {"batch_size": batch_size},
                            [input_record(autoencoder), input_record(latents_file)], overwrite=overwrite)
    if writer.up_to_date():
        log.info("train-ae decode: up to date")
        return writer.artifact
    writer.check_destination()
    dev = resolve_device(device)
    model = load_autoencoder(ae_artifact, dev)
    z_all = data["latents"].astype(np.float32)
    hsi, hsi_b, masks = [], [], []
    with torch.no_grad():
        for sl in _batches(len(z_all), batch_size):
            z = torch.from_numpy(z_all[sl]).to(dev)
            if kind == "vq-rgb":
                hsi.append(model.decode(z, torch.from_numpy(data["rgb"][sl]).to(dev)).cpu().numpy())
            elif kind == "two-stream":
                *images, probs = model.decode(z)
                hsi.append(images[0].cpu().numpy())
                if len(images) > 1:
                    hsi_b.append(images[1].cpu().numpy())
                masks.append(model.labels_from_probs(probs))
            else:
                hsi.append(model.decode(z).cpu().numpy())
    import h5py

    hsi_arr = np.concatenate(hsi).astype(np.float32)
    with writer.building() as tmp:
        with h5py.File(tmp / "samples.h5", "w") as h5:
            h5.create_dataset("hsi", data=hsi_arr)
            h5.create_dataset("wavelengths_nm", data=model.wavelengths_nm)
            if masks:
                h5.create_dataset("labels", data=np.concatenate(masks).astype(np.int32))
            if hsi_b:
                h5.create_dataset("hsi_b", data=np.concatenate(hsi_b).astype(np.float32))
            h5.attrs.update({"scale": model.scale, "offset": model.offset})
        (tmp / "previews").mkdir()
        for i in range(min(len(hsi_arr), 16)):
            save_png(tmp / "previews" / f"{i:04d}.png", false_colour(hsi_arr[i], model.wavelengths_nm))
        writer.spectral = spectral_block(model.wavelengths_nm, model.scale, model.offset)
        writer.extra = {"samples": {"count": int(len(hsi_arr)), "generator": f"train-ae decode ({kind})"}}
    return writer.artifact
