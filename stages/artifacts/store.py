"""Atomic artifact directories.

A stage builds its output in a hidden sibling directory, writes ``manifest.json`` last and
renames the directory into place, so a crash or kill never leaves a directory that a later
stage would accept (docs/design.md §2). Re-running a stage with the same inputs (by hash), config
and hsigen version is a no-op ("up to date"); otherwise the rerun says why.

Two processes writing one target take turns: ``target_lock`` holds an exclusive ``flock`` on
``.NAME.lock`` beside the target (not inside it: the artifact directory is replaced whole).
The CLI holds it for a whole command, so a second ``--out`` writer waits and then finds the
first one's artifact up to date; the writer itself takes it around its final check and rename,
so library callers never both replace one target either.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..common import log
from ..common.errors import ArtifactError, OutputExistsError
from ..common.hashing import file_sha256
from .manifest import SCHEMA_VERSIONS, load_manifest, validate_manifest


def hsigen_version() -> str:
    """The running hsigen's version, read at call time (part of every artifact's up-to-date key)."""
    from .. import __version__

    return __version__


def lock_path(out: Path) -> Path:
    return Path(out).parent / f".{Path(out).name}.lock"


# Locks this process holds: lock path → [file descriptor, depth]. flock locks of two open files
# exclude each other even within one process, so a nested ``target_lock`` of the same target
# (the CLI's around the writer's) must reuse the first one.
_HELD: dict[str, list[int]] = {}


@contextlib.contextmanager
def target_lock(out: str | Path) -> Iterator[None]:
    """Exclusive lock on writing ``out``; waits (saying so) while another process holds it."""
    path = lock_path(Path(out))
    key = os.path.abspath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    made = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                log.info(f"waiting: another hsigen process is writing {out} (lock {path})")
                said = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        # The holder before us removes the lock file on release; then lock the file now there.
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still locked, so no one else can be holding this file
        os.close(fd)
        for folder in made:  # folders made only for the lock, if the command left them empty
            try:
                folder.rmdir()
            except OSError:
                break


def plain_json(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths and tuples into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _inside(root: Path, relative: str) -> bool:
    if os.path.isabs(relative) or relative.startswith(("/", "\\")):
        return False
    resolved = (root / relative).resolve()
    return resolved == root.resolve() or root.resolve() in resolved.parents


@dataclass
class Artifact:
    """A complete, validated artifact directory."""

    path: Path
    manifest: dict

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def config(self) -> dict:
        return self.manifest.get("config", {})

    @property
    def spectral(self) -> dict | None:
        return self.manifest.get("spectral")

    @property
    def metrics(self) -> dict:
        return self.manifest.get("metrics", {})

    def file(self, name: str) -> Path:
        """Path of an output file listed in the manifest."""
        listed = {o["path"] for o in self.manifest["outputs"]}
        if name not in listed:
            raise ArtifactError(f"{self.path} has no {name}; it may come from an older hsigen — rebuild it")
        return self.path / name

    def has(self, name: str) -> bool:
        return any(o["path"] == name for o in self.manifest["outputs"])

    def sha256(self) -> str:
        return file_sha256(self.path / "manifest.json")

    def verify(self) -> list[str]:
        """Recompute every output hash; return the paths that differ from the manifest."""
        return [
            o["path"]
            for o in self.manifest["outputs"]
            if not (self.path / o["path"]).is_file() or file_sha256(self.path / o["path"]) != o["sha256"]
        ]


def open_artifact(path: str | Path, kind: str | tuple[str, ...] | None = None, role: str = "input") -> Artifact:
    """Open and validate an artifact, optionally insisting on its kind; ``pretrained:NAME``
    opens a shipped model after verifying its hashes (``stages/pretrained``)."""
    from .. import pretrained

    if pretrained.is_reference(path):
        path = pretrained.resolve(path)
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{role} {path} does not exist; check the path or run the stage that makes it")
    if not path.is_dir():
        raise ArtifactError(f"{role} {path} is a file, not an hsigen artifact directory")
    manifest = load_manifest(path)
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted and manifest["kind"] not in wanted:
        raise ArtifactError(f"{role} {path} is a {manifest['kind']} artifact; this needs {' or '.join(wanted)}")
    for record in manifest["outputs"]:
        if not _inside(path, record["path"]):
            raise ArtifactError(
                f"{path}/manifest.json names {record['path']!r} outside the artifact; refusing a corrupt manifest"
            )
        target = path / record["path"]
        if not target.is_file() or target.stat().st_size != record["bytes"]:
            raise ArtifactError(f"{target} is missing or has changed size since it was written; rebuild {path}")
    return Artifact(path, manifest)


def input_record(path: str | Path) -> dict:
    """``{path, sha256, kind}`` for a manifest's ``inputs``: artifacts hash their manifest
    (a shipped model is recorded by its name, ``pretrained:NAME``, wherever it is installed)."""
    from .. import pretrained

    if pretrained.is_reference(path) or pretrained.reference_of(path):
        name = str(path) if pretrained.is_reference(path) else pretrained.reference_of(path)
        artifact = open_artifact(name)
        return {"path": name, "sha256": artifact.sha256(), "kind": artifact.kind}
    path = Path(path)
    if path.is_dir():
        artifact = open_artifact(path)
        return {"path": str(path), "sha256": artifact.sha256(), "kind": artifact.kind}
    return {"path": str(path), "sha256": file_sha256(path), "kind": "file"}


@dataclass
class ArtifactWriter:
    """Builds one artifact atomically.

    >>> writer = ArtifactWriter(out, "hsi-dataset", "ingest", config, inputs)
    >>> if writer.up_to_date(): ...            # prints nothing, does no work
    >>> with writer.building() as tmp:          # hidden sibling directory
    ...     write files into tmp; writer.spectral = {...}; writer.metrics = {...}
    >>> writer.artifact                         # the finished Artifact

    ``up_to_date`` logs why an existing artifact is rebuilt (``rerun_reason``); the final rename
    happens under ``target_lock`` and never replaces an artifact another process wrote meanwhile.
    """

    out: Path
    kind: str
    stage: str
    config: dict
    inputs: list[dict]
    overwrite: bool = False
    spectral: dict | None = None
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    artifact: Artifact | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.kind not in SCHEMA_VERSIONS:
            raise ArtifactError(f"internal: unknown artifact kind {self.kind}")
        self.config = plain_json(self.config)
        self.rerun_reason: str | None = None
        self._checked = False
        self._seen: str | None = None  # the target's manifest when this writer first checked it

    # -- before any work -------------------------------------------------------------
    def up_to_date(self) -> bool:
        """True when ``out`` is a complete artifact made by this stage and hsigen version from the
        same inputs and config; otherwise, when ``out`` exists, logs why the stage reruns."""
        self.rerun_reason = self._outdated()
        if self.rerun_reason is None:
            return True
        if self.out.exists() and self.overwrite:  # without --overwrite, check_destination's error says why
            log.info(f"{self.stage}: rerunning, {self.rerun_reason}")
        return False

    def _outdated(self) -> str | None:
        """Why the artifact at ``out`` is not this run's result (None: it is, ``self.artifact`` set)."""
        if not (self.out / "manifest.json").is_file():
            return "no artifact at the target"
        try:
            existing = open_artifact(self.out)
        except ArtifactError as exc:
            return f"the existing artifact is unusable ({exc})"
        m = existing.manifest
        if (m["kind"], m["stage"]) != (self.kind, self.stage):
            return f"it is a {m['kind']} artifact of stage {m['stage']}"
        if m.get("hsigen_version") != hsigen_version():
            return f"hsigen {m.get('hsigen_version')} → {hsigen_version()}"
        old_inputs, new_inputs = m.get("inputs", []), plain_json(self.inputs)
        if [i["sha256"] for i in old_inputs] != [i["sha256"] for i in new_inputs]:
            changed = [_input_name(new) for old, new in zip(old_inputs, new_inputs) if old["sha256"] != new["sha256"]]
            if len(old_inputs) != len(new_inputs):
                changed.append(f"{len(old_inputs)} → {len(new_inputs)} inputs")
            return "inputs changed: " + ", ".join(changed)
        old_config = m.get("config") or {}
        if old_config != self.config:
            keys = sorted(k for k in set(old_config) | set(self.config) if old_config.get(k) != self.config.get(k))
            return "config changed: " + ", ".join(keys)
        self.artifact = existing
        return None

    def check_destination(self) -> None:
        """Refuse to touch anything that is not ours to replace (docs/design.md §2)."""
        out = self.out
        current = _manifest_text(out)
        if not self._checked:
            self._checked, self._seen = True, current
        elif current != self._seen:
            return  # another process wrote it since the first check: ``_finish`` decides, under the lock
        if out.exists() and not out.is_dir():
            raise OutputExistsError(f"--out {out} is a file; choose a directory path")
        if not out.exists():
            if not out.parent.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
            return
        if not self.overwrite:
            why = f" (not up to date: {self.rerun_reason})" if self.rerun_reason and self._seen is not None else ""
            raise OutputExistsError(
                f"output directory {out} already exists; pass --overwrite to replace it or choose another --out{why}"
            )
        if not any(out.iterdir()):
            return
        try:
            json.loads((out / "manifest.json").read_text())["kind"]
        except Exception:
            raise OutputExistsError(
                f"--overwrite refuses to delete {out}: it is a non-empty directory that is not an hsigen artifact; "
                "choose another --out"
            ) from None

    # -- the build ---------------------------------------------------------------------
    @contextlib.contextmanager
    def building(self) -> Iterator[Path]:
        self.check_destination()
        tmp = self.out.parent / f".hsigen-tmp-{self.out.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
            self._finish(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _finish(self, tmp: Path) -> None:
        outputs = []
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            rel = path.relative_to(tmp).as_posix()
            if rel == "manifest.json":
                continue
            outputs.append({"path": rel, "sha256": file_sha256(path), "bytes": path.stat().st_size})
        manifest = {
            "schema_version": SCHEMA_VERSIONS[self.kind],
            "kind": self.kind,
            "stage": self.stage,
            "hsigen_version": hsigen_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "config": self.config,
            "inputs": plain_json(self.inputs),
            "outputs": outputs,
        }
        if self.spectral is not None:
            manifest["spectral"] = plain_json(self.spectral)
        if self.metrics:
            manifest["metrics"] = plain_json(self.metrics)
        manifest.update(plain_json(self.extra))
        validate_manifest(manifest, f"manifest for {self.out}")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        with target_lock(self.out):
            if _manifest_text(self.out) != self._seen and self._written_meanwhile():
                shutil.rmtree(tmp, ignore_errors=True)
                return
            self._swap_into_place(tmp)
        self.artifact = Artifact(self.out, manifest)

    def _written_meanwhile(self) -> bool:
        """Another process wrote ``out`` while this one built it: True (use theirs) when it is up
        to date for this run, else refuse rather than replace a result nobody asked to replace."""
        if self._outdated() is None:
            log.info(f"{self.stage}: up to date (another process wrote {self.out} meanwhile)")
            return True
        raise OutputExistsError(
            f"another process wrote {self.out} while this one ran; nothing was replaced "
            "(re-run to check it, with --overwrite to replace it)"
        )

    def _swap_into_place(self, tmp: Path) -> None:
        trash = None
        if self.out.exists():
            trash = self.out.parent / f".hsigen-old-{self.out.name}-{uuid.uuid4().hex[:8]}"
            os.replace(self.out, trash)
        os.replace(tmp, self.out)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)


def _manifest_text(out: Path) -> str | None:
    try:
        return (out / "manifest.json").read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _input_name(record: dict) -> str:
    """How an input reads in a rerun message: ``dataset`` for an hsi-dataset, a file by its name."""
    kind = record.get("kind", "input")
    return Path(record["path"]).name if kind == "file" else kind.removeprefix("hsi-")


def spectral_block(wavelengths_nm, scale: float, offset: float) -> dict:
    """The manifest's ``spectral`` block: physical = stored * scale + offset."""
    wl = [round(float(w), 4) for w in wavelengths_nm]
    return {"wavelengths_nm": wl, "band_count": len(wl), "scale": float(scale), "offset": float(offset)}
