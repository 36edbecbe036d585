"""A training corpus: several ``hsi-dataset`` artifacts (ingested scenes, ``upsample run``
outputs) read together.

Sources are given as artifact directories (``--dataset A --dataset B``) or a YAML file::

    sources:                      # or a bare list of the same entries
      - path: runs/xiongan        # relative to the YAML file
        weight: 2.0               # sampling weight (default: its number of training patches)
      - path: runs/chikusei-x2
        labels: {3: water, 5: 1}  # optional: source label value → shared class name / value

Every source must have the same spectral grid and patch size (refused otherwise, naming the
mismatch). Units may differ: each source keeps its own ``scale``/``offset`` and the model
trains in **per-source min/max** normalisation, i.e. every source's ``patches.h5`` values as
ingest wrote them (each scene mapped to [0, 1] by one global scale/offset). Why this and not
per-band standardisation: sensors bring different units (reflectance ×10⁴, radiance, [0, 1]
reflectance), so one physical scale would put one sensor's data near zero; a global affine
map per scene keeps each spectrum's shape (band ratios, which SAM and the spectral metrics
measure), whereas per-band standardisation would reshape spectra differently per sensor. The
autoencoders still standardise bands inside their first layer (``bandnorm.py``) with
statistics over the whole corpus. Label values of different sources are different classes
unless a source's ``labels`` map sends them to a shared name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts.store import Artifact, input_record, open_artifact
from ..common.errors import ConfigError, InputError, SpectralError

GRID_TOLERANCE_NM = 0.05
NORMALISATION = "per-source min/max"
NORMALISATION_WHY = (
    "each source keeps the global scale/offset ingest gave it (values in [0, 1]); units differ "
    "between sensors, and one affine map per scene keeps spectral shape, which per-band "
    "standardisation across sensors would not"
)


@dataclass
class Source:
    """One hsi-dataset of a corpus."""

    path: Path
    artifact: Artifact
    weight: float | None  # None: proportional to its training patches
    label_map: dict | None
    wavelengths_nm: np.ndarray
    scale: float
    offset: float
    patches: int
    size: int
    train_rows: np.ndarray  # indices of its training patches in patches.h5
    val_rows: np.ndarray
    has_labels: bool
    has_origin: bool
    sha256: str = ""

    @property
    def h5_path(self) -> Path:
        return self.artifact.file("patches.h5")

    @property
    def units(self) -> str | None:
        return self.artifact.manifest.get("spectral", {}).get("units")

    def identity(self) -> dict:
        """What every report or manifest says of a source it read: path, hash, units, label map."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "scale": self.scale,
            "offset": self.offset,
            "units": self.units,
            "label_map": self.label_map,
        }

    def record(self, weight: float) -> dict:
        return {
            **self.identity(),
            "weight": weight,
            "patches": self.patches,
            "train_patches": int(len(self.train_rows)),
        }


@dataclass
class Corpus:
    sources: list[Source]
    origin: str = ""  # what the user gave (paths, or the YAML file)
    _labels: dict = field(default_factory=dict)

    @property
    def wavelengths_nm(self) -> np.ndarray:
        return self.sources[0].wavelengths_nm

    @property
    def size(self) -> int:
        return self.sources[0].size

    @property
    def bands(self) -> int:
        return int(len(self.wavelengths_nm))

    @property
    def single(self) -> bool:
        return len(self.sources) == 1

    def check_autoencoder(self, ae) -> None:
        """Refuse an autoencoder that cannot encode this corpus's patches (band grid, patch size)."""
        wl = self.wavelengths_nm
        if len(wl) != len(ae.wavelengths_nm) or not np.allclose(wl, ae.wavelengths_nm, atol=0.05):
            raise SpectralError(
                f"the corpus has {len(wl)} bands at {wl.min():.1f}-{wl.max():.1f} nm but the autoencoder "
                f"{len(ae.wavelengths_nm)}; train the autoencoder on the corpus's band grid"
            )
        if self.size % ae.factor:
            raise InputError(f"patch size {self.size} is not a multiple of the autoencoder's factor {ae.factor}")

    def train_counts(self) -> list[int]:
        return [int(len(s.train_rows)) for s in self.sources]

    def weights(self) -> list[float]:
        """Sampling probability per source (given weights, else proportional to training patches)."""
        raw = [float(s.weight) if s.weight is not None else float(len(s.train_rows)) for s in self.sources]
        total = sum(raw)
        return [w / total for w in raw]

    def train_bytes(self) -> int:
        return int(sum(len(s.train_rows) for s in self.sources) * self.bands * self.size * self.size * 4)

    def input_records(self) -> list[dict]:
        return [input_record(s.path) for s in self.sources]

    def normalisation(self) -> dict:
        """The manifest block: scheme, why, and every source with its own scale/offset."""
        return {
            "scheme": NORMALISATION,
            "why": NORMALISATION_WHY,
            "sources": [s.record(w) for s, w in zip(self.sources, self.weights())],
        }

    # -- labels ---------------------------------------------------------------------------------
    def label_table(self) -> tuple[dict, list]:
        """(source index, label value) → global class id, and the class names by id.

        0 stays 0 (unlabelled) in every source. Other values get their own id per source
        ("<source name>:<value>") unless the source's ``labels`` map names a shared class."""
        if self._labels:
            return self._labels["table"], self._labels["names"]
        import h5py

        names, table = ["unlabelled"], {}
        for k, src in enumerate(self.sources):
            if not src.has_labels:
                raise InputError(
                    f"{src.path} has no labels; every source of a labelled corpus needs them "
                    "(re-run ingest with --labels FILE)"
                )
            values: set[int] = set()
            with h5py.File(src.h5_path, "r") as h5:
                labels = h5["labels"]
                for start in range(0, labels.shape[0], 256):
                    values.update(int(v) for v in np.unique(labels[start : start + 256]))
            for v in sorted(values):
                if v == 0:
                    table[(k, 0)] = 0
                    continue
                mapped = (src.label_map or {}).get(v, (src.label_map or {}).get(str(v)))
                name = str(mapped) if mapped is not None else f"{src.path.name}:{v}"
                if name not in names:
                    names.append(name)
                table[(k, v)] = names.index(name)
        self._labels = {"table": table, "names": names}
        return table, names

    def class_names(self) -> list[str]:
        """The corpus's class space: class name by global id (0 = "unlabelled")."""
        return list(self.label_table()[1])

    def class_record(self) -> list[dict]:
        """The class space for a manifest: every global class with its name and the (source,
        label value) pairs that make it up, in id order."""
        table, names = self.label_table()
        members: dict[int, list] = {i: [] for i in range(len(names))}
        for (k, v), i in sorted(table.items()):
            members[i].append({"source": str(self.sources[k].path), "value": int(v)})
        return [{"id": i, "name": names[i], "from": members[i]} for i in range(len(names))]

    def model_class_luts(self, model_names: list[str], what: str) -> list[np.ndarray]:
        """Per source, a lookup array: label value → position in ``model_names`` (the class
        names a model was trained with, e.g. a two-stream autoencoder's). Refuses when the
        model lacks one of the corpus's classes, naming them; ``what`` names the model."""
        _, names = self.label_table()
        missing = [n for n in names if n not in model_names]
        if missing:
            raise ConfigError(
                f"{what}'s classes do not cover the corpus's class space: it lacks {missing} "
                f"(it has {list(model_names)}; the corpus has {names}); train it on this corpus "
                "with the same label maps (`hsigen train-ae --kind two-stream A B ...`)"
            )
        position = np.asarray([list(model_names).index(n) for n in names], np.int64)
        return [position[self.label_lut(k)] for k in range(len(self.sources))]

    def label_lut(self, source: int) -> np.ndarray:
        """A lookup array: source label value → global class id."""
        table, _ = self.label_table()
        values = [v for (k, v) in table if k == source]
        lut = np.zeros(max(values) + 1 if values else 1, np.int64)
        for v in values:
            lut[v] = table[(source, v)]
        return lut


def _read_yaml(path: Path) -> list[dict]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"--dataset {path} is not valid YAML: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("sources")
    if not isinstance(data, list) or not data:
        raise ConfigError(
            f"--dataset {path}: expected a list of sources (or 'sources:' with a list), each "
            "'path:' with optional 'weight:' and 'labels:'"
        )
    entries = []
    for i, item in enumerate(data):
        item = {"path": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or "path" not in item:
            raise ConfigError(f"--dataset {path}: source {i + 1} needs a 'path:'")
        unknown = set(item) - {"path", "weight", "labels"}
        if unknown:
            raise ConfigError(
                f"--dataset {path}: source {i + 1} has unknown key(s) {sorted(unknown)}; use path, weight, labels"
            )
        src = Path(item["path"])
        entries.append(
            {
                "path": src if src.is_absolute() else path.parent / src,
                "weight": item.get("weight"),
                "labels": item.get("labels"),
            }
        )
    return entries


def _entries(given) -> list[dict]:
    if given is None or (isinstance(given, (list, tuple)) and not given):
        raise ConfigError("no --dataset given; name one or more hsi-datasets, or a corpus YAML file")
    items = list(given) if isinstance(given, (list, tuple)) else [given]
    entries = []
    for item in items:
        p = Path(item)
        if p.is_file() and p.suffix.lower() in (".yaml", ".yml"):
            entries += _read_yaml(p)
        else:
            entries.append({"path": p, "weight": None, "labels": None})
    return entries


def _open_source(entry: dict) -> Source:
    import h5py

    path = Path(entry["path"])
    artifact = open_artifact(path, "hsi-dataset")
    weight = entry["weight"]
    if weight is not None and (not isinstance(weight, (int, float)) or weight <= 0):
        raise ConfigError(f"source {path}: weight {weight!r} must be a number > 0")
    labels = entry["labels"]
    if labels is not None and not isinstance(labels, dict):
        raise ConfigError(f"source {path}: 'labels' must map label values to class names")
    with h5py.File(artifact.file("patches.h5"), "r") as h5:
        n, _, size, _ = h5["hsi"].shape
        wl = np.asarray(h5["wavelengths_nm"][...], np.float64)
        split = h5["split"][...].astype(str) if "split" in h5 else None
        has_labels, has_origin = "labels" in h5, "origin" in h5
    rows = np.arange(n)
    train = rows if split is None else rows[split == "train"]
    val = rows[:0] if split is None else rows[split == "val"]
    sp = artifact.spectral
    return Source(
        path,
        artifact,
        None if weight is None else float(weight),
        {int(k) if str(k).lstrip("-").isdigit() else k: v for k, v in labels.items()} if labels else None,
        wl,
        float(sp["scale"]),
        float(sp["offset"]),
        int(n),
        int(size),
        train,
        val,
        has_labels,
        has_origin,
        input_record(path)["sha256"],
    )


def _grid(wl: np.ndarray) -> str:
    return f"{len(wl)} bands {wl.min():.2f}-{wl.max():.2f} nm" if len(wl) else "no bands"


def check_same_grid(sources: list[Source]) -> None:
    first = sources[0]
    for src in sources[1:]:
        a, b = first.wavelengths_nm, src.wavelengths_nm
        if a.shape != b.shape or not np.allclose(a, b, atol=GRID_TOLERANCE_NM, rtol=0):
            worst = "" if a.shape != b.shape else f"; largest difference {np.abs(a - b).max():.3f} nm"
            raise SpectralError(
                f"{src.path} has another spectral grid ({_grid(b)}) than {first.path} ({_grid(a)}){worst}; "
                "ingest every source onto the same grid (the same --bands/--range or --grid-file)"
            )
        if src.size != first.size:
            raise InputError(
                f"{src.path} has {src.size}×{src.size} patches but {first.path} has "
                f"{first.size}×{first.size}; ingest every source with the same --size"
            )


def labelled_corpus_or_dataset(given, role: str, unweighted: str | None = None):
    """For the stages that read labels: the dataset path when ``given`` is one plain hsi-dataset,
    or a corpus YAML of one source without a label map (the single-dataset path, unchanged);
    else the opened ``Corpus`` (several sources, or one whose ``labels`` map names classes).
    ``unweighted``: the stage does not sample by source (every patch or pixel counts once), so a
    YAML ``weight:`` is refused, naming it."""
    items = list(given) if isinstance(given, (list, tuple)) else [given]
    if len(items) == 1 and Path(items[0]).suffix.lower() not in (".yaml", ".yml"):
        return items[0]
    corpus = open_corpus(items)
    if unweighted is not None:
        weighted = [str(s.path) for s in corpus.sources if s.weight is not None]
        if weighted:
            raise ConfigError(
                f"{role}: {unweighted} uses every source's patches once, so a source 'weight:' does not apply "
                f"({', '.join(weighted)}); drop 'weight:' from the corpus YAML"
            )
    if corpus.single and corpus.sources[0].label_map is None:
        return corpus.sources[0].path
    return corpus


def open_corpus(given) -> Corpus:
    """Sources from ``--dataset`` values (artifact directories and/or corpus YAML files)."""
    entries = _entries(given)
    seen = set()
    for e in entries:
        key = Path(e["path"]).resolve()
        if key in seen:
            raise ConfigError(
                f"--dataset {e['path']} is given twice; list each source once (use 'weight:' "
                "in a corpus YAML to sample one more often)"
            )
        seen.add(key)
    sources = [_open_source(e) for e in entries]
    check_same_grid(sources)
    empty = [str(s.path) for s in sources if len(s.train_rows) == 0]
    if empty:
        raise InputError(
            f"{', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no training patches; "
            "re-run ingest with a smaller --val-fraction"
        )
    return Corpus(sources, origin=", ".join(str(g) for g in (given if isinstance(given, (list, tuple)) else [given])))
