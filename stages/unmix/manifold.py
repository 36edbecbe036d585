"""A scene's spectral manifold: a per-pixel nonlinear mixing model fitted to its real spectra, and
the projection of generated spectra onto it (``unmix --method manifold``, ``sample --spectral-manifold``).

Why: a generator's spectra can be about 1 % off every real one and still look right; at that
precision they fall outside the real spectra's k-NN balls (sPr). HyperLDM decodes its latents
through the linear mixing model so that every generated pixel is a mixture of the scene's
endmembers (Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-B). A linear mixture of k endmembers is
a (k − 1)-dimensional affine subspace, and the generated spectra's errors lie inside the scene's
leading principal subspace (docs/pretrained.md, Session 13), so a linear model cannot remove them.
This module fits the nonlinear counterpart: an encoder from a spectrum to ``dims`` mixing
coordinates and a decoder back (the autoencoder form of nonlinear unmixing), trained on the
scene's training pixels only; decoding generated spectra through it puts each on the scene's
``dims``-dimensional spectral manifold. It changes no pixel's neighbourhood, so spatial detail
stays as generated.

A spectrum is decoded to the manifold point nearest it, not to the encoder's guess: the encoder
is an amortised estimate, and from its coordinates a few Levenberg–Marquardt steps per pixel
(Marquardt, "An Algorithm for Least-Squares Estimation of Nonlinear Parameters", SIAM J. Appl.
Math. 11 (1963)) reach the least-squares point. That moves each pixel less, which keeps more of
the differences between neighbouring pixels — the edges and regions a sample's condition maps
asked for (docs/pretrained.md, Session 19).

The networks act on whitened principal-component coordinates of the training pixels (so every
spectral direction starts at unit scale); the loss is the squared error in physical units (each
coordinate weighted by its variance), the error ``evaluate`` measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import ArtifactError, ConfigError

WEIGHTS = "weights.safetensors"
KIND = "spectral-manifold"
# The encoder reads the principal components with at least this share of the leading one's
# variance. Directions the training spectra do not vary in would reach the encoder only through
# weights no gradient ever trained, so an input off the manifold there (a generator's error) would
# be mapped anywhere; they are left out, as a linear mixing model's projection leaves them out.
INPUT_VARIANCE_SHARE = 1e-4
# Levenberg–Marquardt iterations from the encoder's coordinates to the nearest manifold point. On the
# shipped latent model's samples (16 images, K = 3) the mean squared error falls 0.0510 (the encoder's
# guess) → 0.0343 / 0.0336 / 0.0334 after 5 / 10 / 20, where 300 Adam steps end at 0.0332; 10 take
# about 6 s per 16 images of 32 × 32 on one core.
NEAREST_ITERATIONS = 10
# The fit's metrics (projection error of the train and val pixels) are measured on at most this many
# pixels of each split, evenly spaced. On Indian Pines (55,296 train + 18,432 val pixels, the shipped
# K = 3 manifold, one core) the nearest-point search takes 8 s on these subsets against 32 s on every
# pixel, and the subsets' RMSE is within 0.2 % of the whole splits'.
METRIC_PIXELS = 16384


def evenly_spaced(rows, limit: int = METRIC_PIXELS):
    """At most ``limit`` rows of ``rows`` (an array), every k-th from the first."""
    return rows[:: -(-len(rows) // limit)] if len(rows) > limit else rows


@dataclass
class ManifoldConfig:
    dims: int = 4  # mixing coordinates per pixel (the manifold's dimension)
    hidden: int = 256  # width of the encoder's and decoder's two hidden layers
    steps: int = 4000
    batch_size: int = 2048
    lr: float = 2e-3
    seed: int = 0
    by_class: bool = False  # one manifold per ground-truth class (decoding needs each pixel's label)


def _mlp(n_in: int, n_out: int, hidden: int):
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden),
        torch.nn.SiLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.SiLU(),
        torch.nn.Linear(hidden, n_out),
    )


class SpectralManifold:
    """Encoder + decoder of one scene's spectra (B bands, physical units). With ``classes`` (label
    values) both networks also read the pixel's class, one-hot: a manifold per class, sharing weights."""

    def __init__(
        self,
        mean: np.ndarray,
        basis: np.ndarray,
        spread: np.ndarray,
        dims: int,
        hidden: int,
        classes: list[int] | None = None,
    ):
        import torch

        self.mean = np.asarray(mean, np.float64)  # (B,)
        self.basis = np.asarray(basis, np.float64)  # (B, B): principal directions as columns
        self.spread = np.asarray(spread, np.float64)  # (B,) each component's std, largest first
        self.dims, self.hidden = int(dims), int(hidden)
        bands = len(self.mean)
        # The leading components the encoder reads (INPUT_VARIANCE_SHARE); at least dims of them.
        share = (self.spread / self.spread[0]) ** 2
        self.inputs = max(self.dims, int(np.sum(share >= INPUT_VARIANCE_SHARE)))
        # Whitening scale: the spread, floored where the encoder does not read (no division by ~0).
        self.scale = np.maximum(self.spread, self.spread[0] * np.sqrt(INPUT_VARIANCE_SHARE))
        self.classes = None if classes is None else [int(c) for c in classes]
        if self.classes is not None and self.classes != sorted(set(self.classes)):
            raise ArtifactError(
                f"a by-class spectral manifold lists its classes once each, in order; got {self.classes}"
            )
        n_classes = len(self.classes or [])
        self.encoder = _mlp(self.inputs + n_classes, self.dims, self.hidden)
        self.decoder = _mlp(self.dims + n_classes, bands, self.hidden)
        t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        self._mean, self._whiten, self._unwhiten = (
            t(self.mean),
            t(self.basis / self.scale),
            t(self.basis * self.scale).T,
        )

    @property
    def bands(self) -> int:
        return len(self.mean)

    def whiten(self, x):
        return (x - self._mean) @ self._whiten

    def unwhiten(self, z):
        return z @ self._unwhiten + self._mean

    def encode(self, z, onehot=None):
        """Whitened spectra (and their classes, one-hot) → the encoder's mixing coordinates."""
        import torch

        return self.encoder(z[:, : self.inputs] if onehot is None else torch.cat([z[:, : self.inputs], onehot], 1))

    def decode(self, coords, onehot=None):
        """Mixing coordinates (and classes, one-hot) → points of the manifold (whitened)."""
        import torch

        return self.decoder(coords if onehot is None else torch.cat([coords, onehot], 1))

    def reconstruct(self, z, onehot=None):
        """Whitened spectra (and their classes, one-hot) → the decoder's points for the encoder's
        coordinates (what fitting trains; decoding generated spectra goes on to ``nearest``)."""
        return self.decode(self.encode(z, onehot), onehot)

    def error_weights(self):
        """Per whitened coordinate, the weight that makes a squared whitened error the physical one
        (over the leading component's variance): the loss of ``fit`` and of ``nearest``."""
        import torch

        return torch.tensor((self.scale / self.scale[0]) ** 2, dtype=torch.float32)

    def nearest(self, z, coords, onehot=None, iterations: int = NEAREST_ITERATIONS):
        """Levenberg–Marquardt from ``coords`` to the coordinates of the manifold point nearest each
        whitened spectrum of ``z`` (weighted least squares, ``error_weights``). Every pixel has its own
        damping and takes a step only where it lowers that pixel's error, so no pixel ends farther from
        its spectrum than it started, and pixels do not affect one another."""
        import torch

        weights = self.error_weights()

        def error(c):
            return (((self.decode(c, onehot) - z) ** 2) * weights).sum(1)

        with torch.no_grad():
            damping = torch.full((len(coords),), 1e-2)
            current = error(coords)
            for _ in range(iterations):
                decoded, jacobian = self._decode_with_jacobian(coords, onehot)  # (N, B), (K, N, B)
                weighted = jacobian * weights
                normal = torch.stack([(weighted[a] * jacobian).sum(-1) for a in range(len(jacobian))])  # (K, K, N)
                normal = normal.permute(2, 0, 1)  # (N, K, K)
                gradient = (weighted * (z - decoded)).sum(-1).T  # (N, K)
                diagonal = torch.diagonal(normal, dim1=1, dim2=2).clamp_min(1e-12)
                step = torch.linalg.solve(normal + torch.diag_embed(damping[:, None] * diagonal), gradient)
                trial = coords + step
                trial_error = error(trial)
                better = trial_error < current  # NaN is never better
                coords = torch.where(better[:, None], trial, coords)
                current = torch.where(better, trial_error, current)
                damping = torch.where(better, damping / 3, damping * 4)
        return coords

    def _decode_with_jacobian(self, coords, onehot=None):
        """``decode`` and its Jacobian with respect to the coordinates, (K, N, B), written out for the
        decoder's Linear–SiLU–Linear–SiLU–Linear form (``_mlp``) as two large matrix products (5x faster
        than forward-mode autodiff per pixel, torch.func.jacfwd, on one core)."""
        import torch

        first, second, last = self.decoder[0], self.decoder[2], self.decoder[4]
        inputs = coords if onehot is None else torch.cat([coords, onehot], 1)

        def silu_and_slope(h):
            sig = torch.sigmoid(h)
            return h * sig, sig * (1 + h * (1 - sig))

        hidden1, slope1 = silu_and_slope(first(inputs))
        hidden2, slope2 = silu_and_slope(second(hidden1))
        n, k, width = len(coords), coords.shape[1], hidden1.shape[1]
        # Coordinate-major (K, N, H), so that each product is one (K·N, H) matrix product.
        jacobian = first.weight[:, :k].T[:, None, :] * slope1  # d hidden1 / d coords
        jacobian = (jacobian.reshape(k * n, width) @ second.weight.T).reshape(k, n, width) * slope2
        return last(hidden2), (jacobian.reshape(k * n, width) @ last.weight.T).reshape(k, n, -1)

    def onehot(self, labels: np.ndarray, as_unlabelled: bool = False):
        """Label values (N,) → one-hot rows over ``classes``. A value the manifold was not fitted on (a
        class without training pixels) is refused, or with ``as_unlabelled`` decoded as class 0."""
        import torch

        labels = np.asarray(labels).reshape(-1)
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted(set(np.unique(labels).tolist()) - set(index))
        if unknown and as_unlabelled and 0 in index:
            labels = np.where(np.isin(labels, unknown), 0, labels)
        elif unknown:
            raise ConfigError(
                f"labels {unknown} are not among the classes the spectral manifold was fitted on "
                f"({self.classes}); fit it on a dataset with the same classes (unmix --method manifold --by-class)"
            )
        # classes are sorted (fit sorts them), so a known label's position is its searchsorted index
        rows = torch.from_numpy(np.searchsorted(self.classes, labels).astype(np.int64))
        return torch.nn.functional.one_hot(rows, len(self.classes)).float()

    def project_pixels(
        self,
        pixels: np.ndarray,
        labels: np.ndarray | None = None,
        as_unlabelled: bool = False,
        chunk: int = 65536,
        iterations: int = NEAREST_ITERATIONS,
    ) -> np.ndarray:
        """(N, B) physical spectra (with their label values (N,) for a by-class manifold) → the nearest
        points of the manifold (the encoder's guess, then ``iterations`` steps of ``nearest``; 0: the
        guess alone); ``as_unlabelled``: see ``onehot``."""
        import torch

        pixels = np.asarray(pixels)
        if pixels.ndim != 2 or pixels.shape[1] != self.bands:
            raise ConfigError(f"the spectral manifold takes spectra of {self.bands} bands, got shape {pixels.shape}")
        if (self.classes is None) != (labels is None):
            raise ConfigError(
                "this spectral manifold decodes by class: give each pixel's label"
                if self.classes is not None
                else "this spectral manifold was fitted without classes; decode without labels"
            )
        labels = None if labels is None else np.asarray(labels).reshape(-1)
        out = np.empty(pixels.shape, np.float32)
        with torch.no_grad():
            for start in range(0, len(pixels), chunk):
                x = torch.from_numpy(np.asarray(pixels[start : start + chunk], np.float32))
                onehot = None if labels is None else self.onehot(labels[start : start + chunk], as_unlabelled)
                z = self.whiten(x)
                coords = self.encode(z, onehot)
                if iterations:
                    coords = self.nearest(z, coords, onehot, iterations)
                out[start : start + chunk] = self.unwhiten(self.decode(coords, onehot)).numpy()
        return out

    def project(
        self,
        cubes: np.ndarray,
        labels: np.ndarray | None = None,
        as_unlabelled: bool = False,
        iterations: int = NEAREST_ITERATIONS,
    ) -> np.ndarray:
        """(N, B, H, W) physical images (with label maps (N, H, W) for a by-class manifold) → the same
        images with every pixel projected (``project_pixels``)."""
        n, b, h, w = cubes.shape
        flat = np.moveaxis(cubes, 1, -1).reshape(-1, b)
        projected = self.project_pixels(flat, labels, as_unlabelled, iterations=iterations)
        return np.moveaxis(projected.reshape(n, h, w, b), -1, 1)

    def project_normalised(
        self,
        cubes: np.ndarray,
        scale: float,
        offset: float,
        labels=None,
        as_unlabelled: bool = False,
        iterations: int = NEAREST_ITERATIONS,
    ) -> np.ndarray:
        """As ``project`` for images stored as physical = stored · scale + offset."""
        projected = self.project(np.asarray(cubes, np.float64) * scale + offset, labels, as_unlabelled, iterations)
        return ((projected - offset) / scale).astype(np.float32)

    # -- files ---------------------------------------------------------------------------------
    def tensors(self) -> dict:
        import torch

        out = {
            "mean": torch.tensor(self.mean),
            "basis": torch.tensor(self.basis),
            "spread": torch.tensor(self.spread),
        }
        if self.classes is not None:
            out["classes"] = torch.tensor(self.classes, dtype=torch.int64)
        out.update({f"encoder.{k}": v.detach().clone() for k, v in self.encoder.state_dict().items()})
        out.update({f"decoder.{k}": v.detach().clone() for k, v in self.decoder.state_dict().items()})
        return out

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.tensors().items()}, str(path))

    @classmethod
    def read(cls, path: Path, dims: int, hidden: int) -> SpectralManifold:
        """Weights written by ``save`` (safetensors: no code is unpickled), loaded strictly by key."""
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        try:
            classes = tensors["classes"].tolist() if "classes" in tensors else None
            arrays = (tensors[name].numpy() for name in ("mean", "basis", "spread"))
            model = cls(*arrays, dims, hidden, classes)
            for prefix, net in (("encoder.", model.encoder), ("decoder.", model.decoder)):
                net.load_state_dict({k[len(prefix) :]: v.float() for k, v in tensors.items() if k.startswith(prefix)})
        except (KeyError, RuntimeError) as e:
            raise ArtifactError(
                f"{path} does not hold a spectral manifold of {dims} dimensions ({e}); rebuild it with "
                "`hsigen unmix --method manifold`"
            ) from None
        return model


def fit(pixels: np.ndarray, cfg: ManifoldConfig, progress=None, labels=None) -> tuple[SpectralManifold, float]:
    """A manifold fitted to training spectra (N, B) in physical units (and their label values (N,)
    when ``cfg.by_class``); returns it and the last steps' mean loss (squared physical error over the
    leading component's variance)."""
    import torch

    from ..training.loop import TrainSpec, make_optimizer

    pixels = np.asarray(pixels, np.float64)
    mean = pixels.mean(0)
    variances, basis = np.linalg.eigh(np.cov((pixels - mean).T))
    variances, basis = variances[::-1].clip(min=0), np.ascontiguousarray(basis[:, ::-1])
    spread = np.sqrt(variances)
    torch.manual_seed(cfg.seed)
    if cfg.by_class and labels is None:
        raise ConfigError("--by-class needs each training pixel's label")
    classes = sorted(np.unique(labels).tolist()) if cfg.by_class else None
    model = SpectralManifold(mean, basis, spread, cfg.dims, cfg.hidden, classes)
    data = model.whiten(torch.tensor(pixels, dtype=torch.float32))
    onehot = model.onehot(labels) if cfg.by_class else None
    weight = model.error_weights()
    params = [*model.encoder.parameters(), *model.decoder.parameters()]
    optimizer, schedule = make_optimizer(params, TrainSpec(steps=cfg.steps, lr=cfg.lr, weight_decay=0.0))
    draws = torch.Generator().manual_seed(cfg.seed)
    recent = []
    for _ in range(cfg.steps):
        rows = torch.randint(0, len(data), (cfg.batch_size,), generator=draws)
        batch = data[rows]
        reconstructed = model.reconstruct(batch, None if onehot is None else onehot[rows])
        loss = (((reconstructed - batch) ** 2) * weight).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        recent = (recent + [loss.item()])[-50:]
        if progress is not None:
            progress.advance(1)
    return model, float(np.mean(recent))


def load_manifold(path) -> tuple[SpectralManifold, object]:
    """(manifold, artifact) of a ``spectral-manifold`` artifact (a directory or pretrained:NAME)."""
    from ..artifacts import open_artifact

    artifact = open_artifact(path, KIND, role="--spectral-manifold")
    shape = artifact.manifest["manifold"]
    return SpectralManifold.read(artifact.file(WEIGHTS), int(shape["dims"]), int(shape["hidden"])), artifact


def run(patches, dataset: Path, out: Path, cfg: ManifoldConfig, recorded: dict, *, overwrite: bool = False):
    """``unmix --method manifold``: fit the manifold to ``patches``' training pixels (a PatchSet) and
    write a ``spectral-manifold`` artifact; the projection error of the train and val pixels
    (``evenly_spaced``) is its metrics (physical units)."""
    from ..artifacts import ArtifactWriter, input_record, spectral_block
    from ..common import log
    from .endmembers import pixels_of
    from .metrics import ReconstructionStats

    if not 1 <= cfg.dims < patches.hsi.shape[1]:
        raise ConfigError(
            f"-k {cfg.dims}: a spectral manifold has 1 to {patches.hsi.shape[1] - 1} dimensions "
            f"(fewer than the dataset's {patches.hsi.shape[1]} bands); try -k 3"
        )
    if min(cfg.steps, cfg.batch_size, cfg.hidden) < 1 or cfg.lr <= 0:
        raise ConfigError("--steps, --batch-size and --lr must be positive")
    if cfg.by_class and patches.labels is None:
        raise ConfigError(
            f"--by-class fits a manifold per class, and {dataset} has no labels; ingest the scene with its "
            "ground-truth map, or leave out --by-class"
        )
    writer = ArtifactWriter(out, KIND, "unmix", recorded, [input_record(dataset)], overwrite)
    if writer.up_to_date():
        log.info("unmix: up to date")
        return writer.artifact
    writer.check_destination()
    physical = lambda p: (pixels_of(p.hsi).astype(np.float64) * p.scale + p.offset).T  # noqa: E731  (N, B)
    labels_of = lambda p: p.labels.reshape(-1) if cfg.by_class else None  # noqa: E731  (N,), pixels_of's order
    has_split = patches.split is not None and np.any(patches.split == "train")
    train = patches.subset(patches.split == "train") if has_split else patches
    with log.progress("unmix (spectral manifold)", cfg.steps) as bar:
        model, loss = fit(physical(train), cfg, bar, labels_of(train))
    metrics = {"final_loss": loss}
    for split in ("train", "val"):
        if split == "val" and not (patches.split is not None and np.any(patches.split == "val")):
            continue
        part = train if split == "train" else patches.subset(patches.split == "val")
        pixels, labels = physical(part), labels_of(part)
        if labels is not None:  # val pixels of a class the train rows lack have no manifold: left out
            known = np.isin(labels, model.classes)
            pixels, labels = pixels[known], labels[known]
        pixels, labels = evenly_spaced(pixels), None if labels is None else evenly_spaced(labels)
        stats = ReconstructionStats()
        stats.add(pixels.T, model.project_pixels(pixels, labels).T.astype(np.float64))
        metrics[split] = stats.result()
    with writer.building() as tmp:
        model.save(tmp / WEIGHTS)
        writer.spectral = spectral_block(patches.wavelengths_nm, patches.scale, patches.offset)
        writer.metrics = metrics
        writer.extra = {"manifold": {"dims": cfg.dims, "hidden": cfg.hidden, "units": "physical"}}
        if model.classes is not None:
            writer.extra["manifold"]["classes"] = model.classes
    shown = metrics.get("val", metrics["train"])
    log.info(
        f"unmix: spectral manifold of {cfg.dims} dimensions; projection RMSE {shown['reconstruction_rmse']:.4g}, "
        f"SAD {shown['reconstruction_sad_rad']:.4f} rad ({'val' if 'val' in metrics else 'train'} pixels)"
    )
    return writer.artifact


def open_for_model(path, model) -> SpectralManifold:
    """The manifold of ``sample --spectral-manifold PATH`` for a loaded diffusion ``model``: refused,
    before anything is written, when fitted on another band grid, or by class for a model without masks."""
    manifold, artifact = load_manifold(path)
    mine = np.asarray(artifact.spectral["wavelengths_nm"], np.float64)
    theirs = np.asarray(model.artifact.spectral["wavelengths_nm"], np.float64)
    if mine.shape != theirs.shape or not np.allclose(mine, theirs, atol=0.5):
        raise ConfigError(
            f"--spectral-manifold {artifact.path} was fitted on {len(mine)} bands "
            f"({mine[0]:.0f}-{mine[-1]:.0f} nm), the model {model.artifact.path} has {len(theirs)} "
            f"({theirs[0]:.0f}-{theirs[-1]:.0f} nm); fit one on the same band grid: "
            "hsigen unmix DATASET --method manifold -k 3 --out DIR"
        )
    if manifold.classes is None:
        return manifold
    if model.space != "joint":
        raise ConfigError(
            f"--spectral-manifold {path} decodes by class and needs each pixel's label: use it with a labelled "
            "(--space joint) model, or fit one without --by-class for this model"
        )
    missing = sorted({int(c) for c in model.config.get("classes", [])} - set(manifold.classes))
    if missing and 0 not in manifold.classes:
        raise ConfigError(
            f"--spectral-manifold {path} has no manifold for the model's classes {missing}; fit it on the "
            "dataset the model was trained on (unmix DATASET --method manifold --by-class)"
        )
    if missing:
        from ..common import log

        log.info(f"sample: classes {missing} had no training pixels in {path}; they decode as unlabelled (0)")
    return manifold
