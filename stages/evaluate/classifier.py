"""The spectral pixel classifier S of Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-E: four 1-D convolution layers and
one fully connected layer, trained on labelled single-pixel spectra of the same dataset.

Used for SD / SDM (its softmax), spectral FID / KID / IS (its penultimate features and softmax)
and the downstream check. Inputs are physical spectra standardised per band with the training
pixels' mean and std (stored with the weights)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..common import log
from ..common.errors import ArtifactError, ConfigError
from ..common.runtime import torch_threads
from ..training.presets import Preset, preset_table


@dataclass(frozen=True)
class ClassifierPreset(Preset):
    """The spectral 1-D CNN: four convolution widths, kernel size and optimiser."""

    channels: list[int]
    kernel: int
    steps: int
    batch_size: int
    lr: float


# The paper fixes the layout (4 × Conv1d + FC) but not the widths; `paper` uses widths in the
# range of common 1-D CNN spectral classifiers, `tiny` trains in seconds on a CPU.
PRESETS: dict[str, ClassifierPreset] = preset_table(
    ClassifierPreset,
    {
        "tiny": {"channels": [8, 16, 32, 32], "kernel": 5, "steps": 300, "batch_size": 256, "lr": 3e-3},
        "paper": {"channels": [32, 64, 128, 128], "kernel": 7, "steps": 5000, "batch_size": 512, "lr": 1e-3},
    },
)
POOLED_LENGTH = 4
WEIGHTS_FILE = "model.safetensors"
META_FILE = "classifier.json"


def build_model(bands: int, n_classes: int, channels, kernel: int):
    import torch
    from torch import nn

    class SpectralCNN(nn.Module):
        """Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-E: spectrum (1 × n_c) → four Conv1d layers
        → FC → class scores."""

        def __init__(self):
            super().__init__()
            layers, c_in = [], 1
            for i, c_out in enumerate(channels):
                layers += [nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.ReLU()]
                if i < len(channels) - 1:
                    layers.append(nn.MaxPool1d(2, ceil_mode=True))
                c_in = c_out
            # A fixed output length makes the FC independent of the band count.
            layers.append(nn.AdaptiveAvgPool1d(POOLED_LENGTH))
            self.conv = nn.Sequential(*layers)
            self.fc = nn.Linear(channels[-1] * POOLED_LENGTH, n_classes)

        def features(self, x: torch.Tensor) -> torch.Tensor:
            """Penultimate features (spectral FID/KID use these)."""
            return self.conv(x[:, None, :]).flatten(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.features(x))

    if len(channels) != 4:
        raise ConfigError(
            "the spectral classifier has exactly four convolution layers "
            "(Liu et al., HyperLDM, IEEE TGRS 61 (2023) §III-E)"
        )
    return SpectralCNN()


@dataclass
class ClassifierMeta:
    classes: list[int]  # dataset label values (a corpus: its class ids), index = output unit
    mean: list[float]  # per-band standardisation (physical units)
    std: list[float]
    wavelengths_nm: list[float]
    channels: list[int]
    kernel: int
    extra: dict = field(default_factory=dict)  # a corpus: class_names (by output unit), sources


class PixelClassifier:
    """A trained classifier with its normalisation; predicts on physical spectra (n, B)."""

    def __init__(self, model, meta: ClassifierMeta):
        self.model, self.meta = model.eval(), meta
        self._mean = np.asarray(meta.mean, np.float32)
        self._std = np.asarray(meta.std, np.float32)

    @property
    def n_classes(self) -> int:
        return len(self.meta.classes)

    @property
    def class_names(self) -> list[str] | None:
        """Names of the output classes (a classifier trained on a corpus: the corpus's class
        names, in output order); None for one dataset, whose classes are its label values."""
        names = self.meta.extra.get("class_names")
        return None if names is None else [str(n) for n in names]

    def _batches(self, spectra: np.ndarray, fn, batch: int = 8192) -> np.ndarray:
        import torch

        x = (np.asarray(spectra, np.float32) - self._mean) / self._std
        out = []
        with torch.no_grad(), torch_threads(1):
            for a in range(0, len(x), batch):
                out.append(fn(torch.from_numpy(x[a : a + batch])).double().numpy())
        return np.concatenate(out, 0) if out else np.empty((0, 0))

    def probabilities(self, spectra: np.ndarray) -> np.ndarray:
        import torch

        return self._batches(spectra, lambda x: torch.softmax(self.model(x), dim=1))

    def features(self, spectra: np.ndarray) -> np.ndarray:
        return self._batches(spectra, self.model.features)

    def predict(self, spectra: np.ndarray) -> np.ndarray:
        """Dataset label values."""
        return np.asarray(self.meta.classes)[self.probabilities(spectra).argmax(1)]


def train_pixel_classifier(
    spectra: np.ndarray,
    labels: np.ndarray,
    wavelengths_nm,
    hyper: dict,
    seed: int,
    device,
    out: Path | None = None,
    resume: bool = False,
    checkpoint_every: int = 0,
    classes: list[int] | None = None,
    weights: np.ndarray | None = None,
):
    """Train S with the shared Trainer; returns (PixelClassifier, trainer history).

    ``weights`` (n,) optionally weights each pixel's loss (synthetic pixels in the downstream
    check); batches are drawn from the step generator, so training is exact to resume."""
    import torch

    from ..common.runtime import seed_everything
    from ..training import Trainer, TrainSpec

    spectra = np.asarray(spectra, np.float32)
    classes = sorted(int(c) for c in (classes if classes is not None else np.unique(labels)))
    if len(classes) < 2:
        raise ConfigError(f"the classifier needs at least 2 labelled classes; found {classes}")
    index = {c: i for i, c in enumerate(classes)}
    targets = torch.tensor([index[int(v)] for v in labels], dtype=torch.long)
    mean = spectra.mean(0)
    std = spectra.std(0) + 1e-6 * (np.abs(mean) + 1.0)
    x = torch.from_numpy((spectra - mean) / std)
    w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
    seed_everything(seed)
    model = build_model(spectra.shape[1], len(classes), hyper["channels"], hyper["kernel"])
    spec = TrainSpec(
        steps=int(hyper["steps"]),
        lr=float(hyper["lr"]),
        seed=seed,
        weight_decay=1e-4,
        warmup_steps=min(50, int(hyper["steps"]) // 10),
        checkpoint_every=checkpoint_every,
        log_every=max(1, int(hyper["steps"]) // 10),
    )
    batch = int(hyper["batch_size"])
    fingerprint = {
        "n": int(len(x)),
        "classes": classes,
        "hyper": {k: hyper[k] for k in sorted(hyper)},
        "checksum": float(np.float64(spectra[:: max(1, len(spectra) // 1000)].sum())),
    }
    work = out if out is not None else Path(".hsigen-classifier-scratch")
    trainer = Trainer(model, spec, work, torch.device("cpu") if device is None else device, fingerprint, resume)

    def loss_fn(net, step, generator):
        idx = torch.randint(0, len(x), (batch,), generator=generator)
        logits = net(x[idx].to(trainer.device))
        losses = torch.nn.functional.cross_entropy(logits, targets[idx].to(trainer.device), reduction="none")
        loss = losses.mean() if w is None else (losses * w[idx].to(trainer.device)).sum() / w[idx].sum()
        return loss, {"loss": float(loss.detach())}

    with torch_threads(1):
        history = trainer.fit(loss_fn, "classifier")
    model.load_state_dict(trainer.final_state())
    trainer.cleanup()
    meta = ClassifierMeta(
        classes,
        mean.tolist(),
        std.tolist(),
        [float(v) for v in wavelengths_nm],
        list(hyper["channels"]),
        int(hyper["kernel"]),
    )
    return PixelClassifier(model.cpu(), meta), history


def save_classifier(clf: PixelClassifier, directory: Path) -> None:
    from ..training import save_weights

    save_weights(clf.model.state_dict(), directory / WEIGHTS_FILE)
    (directory / META_FILE).write_text(json.dumps(asdict(clf.meta), indent=2) + "\n")


def load_classifier(path: str | Path) -> PixelClassifier:
    """Open a ``classifier`` artifact."""
    from ..artifacts.store import open_artifact
    from ..training import load_weights

    artifact = open_artifact(path, "classifier", role="--classifier")
    meta = ClassifierMeta(**json.loads(artifact.file(META_FILE).read_text()))
    model = build_model(len(meta.wavelengths_nm), len(meta.classes), meta.channels, meta.kernel)
    try:
        model.load_state_dict(load_weights(artifact.file(WEIGHTS_FILE)))
    except RuntimeError as exc:
        raise ArtifactError(f"{path}: weights do not fit the recorded architecture ({exc}); retrain it") from None
    log.debug(f"classifier {path}: {len(meta.classes)} classes, {len(meta.wavelengths_nm)} bands")
    return PixelClassifier(model, meta)


def accuracy_scores(true: np.ndarray, pred: np.ndarray) -> dict:
    """OA, AA (mean per-class recall over classes present in ``true``) and Cohen's κ."""
    true = np.asarray(true)
    pred = np.asarray(pred)
    classes = np.unique(np.concatenate([true, pred]))
    idx = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(cm, ([idx[t] for t in true], [idx[p] for p in pred]), 1)
    n = cm.sum()
    oa = np.trace(cm) / n
    present = cm.sum(1) > 0
    aa = np.mean(np.diag(cm)[present] / cm.sum(1)[present])
    pe = (cm.sum(0) * cm.sum(1)).sum() / n**2
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 1.0
    return {"oa": float(oa), "aa": float(aa), "kappa": float(kappa), "n": int(n)}
