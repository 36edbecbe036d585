"""Reading each step's batch from disk, through a torch ``DataLoader``.

Storage: the ``patches.h5`` ingest and ``upsample run`` already write, with ``hsi`` chunked
one patch per chunk and uncompressed. A patch is then one contiguous read of B·S·S·4 bytes
(48 × 256 × 256 × 4 = 12.6 MB at HSIGene's size, 0.8 MB at 64 × 64): on a local disk the
page cache and readahead serve it; on a network file system (NFS, Lustre, GPFS) a read that
large is bandwidth-bound rather than latency-bound, and the loader's workers keep several in
flight. Re-packing into shards would only pay off for patches far smaller than ~1 MB, and
would cost a full copy of the corpus, so patches are read where they are.

Item ``i`` of :class:`StepBatches` is the whole per-rank batch of micro-step ``start + i``
(``batch_size=None`` in the DataLoader): the worker that builds it reads the planned patches,
crops them and applies the symmetries, so order never depends on worker scheduling (the
DataLoader returns items in index order).
"""

from __future__ import annotations

import os

import numpy as np

from .corpus import Corpus
from .plan import BatchPlan, Draws


def dihedral_np(x: np.ndarray, k: int) -> np.ndarray:
    """The k-th symmetry of the square on the last two axes: k % 4 quarter turns, then a flip
    if k ≥ 4 (the same as ``stages.autoencoder.data.dihedral`` on tensors)."""
    y = np.rot90(x, k % 4, axes=(-2, -1))
    return y[..., ::-1] if k >= 4 else y


class PatchReader:
    """Open ``patches.h5`` files lazily, once per process (h5py handles do not survive fork)."""

    def __init__(self, paths: list[str]):
        self.paths = [str(p) for p in paths]
        self._pid, self._files = None, {}

    def dataset(self, source: int, name: str):
        import h5py

        if self._pid != os.getpid():
            self._pid, self._files = os.getpid(), {}
        if source not in self._files:
            # A small raw-chunk cache: patches are read once per draw, caching them only wastes RAM.
            self._files[source] = h5py.File(self.paths[source], "r", rdcc_nbytes=1 << 20)
        return self._files[source][name]

    def __getstate__(self):
        return {"paths": self.paths, "_pid": None, "_files": {}}


def read_draws(reader: PatchReader, draws: Draws, crop: int, luts: list[np.ndarray] | None = None) -> dict:
    """The planned crops as arrays: ``hsi`` (n, B, c, c) float32 and, with ``luts``, ``labels``
    (n, c, c) int64 global class ids."""
    hsi, labels = [], []
    for s, r, t, lft, k in zip(draws.source, draws.row, draws.top, draws.left, draws.symmetry):
        window = (slice(int(t), int(t) + crop), slice(int(lft), int(lft) + crop))
        patch = reader.dataset(int(s), "hsi")[int(r), :, window[0], window[1]]
        hsi.append(dihedral_np(patch, int(k)))
        if luts is not None:
            lab = reader.dataset(int(s), "labels")[int(r), window[0], window[1]]
            labels.append(dihedral_np(luts[int(s)][lab], int(k)))
    out = {"hsi": np.ascontiguousarray(np.stack(hsi), dtype=np.float32)}
    if luts is not None:
        out["labels"] = np.ascontiguousarray(np.stack(labels), dtype=np.int64)
    return out


class StepBatches:
    """A map-style dataset: item i = the rank's batch of micro-step ``start + i``."""

    def __init__(self, corpus: Corpus, plan: BatchPlan, rank: int, start: int, stop: int, labels: bool = False):
        self.reader = PatchReader([s.h5_path for s in corpus.sources])
        self.plan, self.rank, self.start, self.stop = plan, rank, int(start), int(stop)
        self.luts = [corpus.label_lut(i) for i in range(len(corpus.sources))] if labels else None

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> dict:
        import torch

        step = self.start + int(i)
        arrays = read_draws(self.reader, self.plan.for_step(step, self.rank), self.plan.crop, self.luts)
        return {"micro_step": step, **{k: torch.from_numpy(v) for k, v in arrays.items()}}


def loader(dataset, device, workers: int = 2, prefetch: int = 4):
    """Batches of ``dataset`` in order, built by ``workers`` processes, pinned when the model is
    on a GPU and copied there one batch ahead (:class:`DevicePrefetcher`)."""
    import torch

    cuda = getattr(device, "type", str(device)).startswith("cuda")
    kwargs = {"num_workers": int(workers), "pin_memory": cuda, "batch_size": None, "shuffle": False}
    if workers > 0:
        # Spawned, not forked: a forked worker would carry the parent's memory (model, held-out
        # subsets) in its resident set; a spawned one holds only torch and the batch it builds.
        kwargs.update(prefetch_factor=int(prefetch), persistent_workers=False, multiprocessing_context="spawn")
    return DevicePrefetcher(torch.utils.data.DataLoader(dataset, **kwargs), device)


class DevicePrefetcher:
    """Iterate a DataLoader with the next batch already on its way to the device (a side CUDA
    stream), so the host-to-device copy overlaps the current step. On CPU: a plain pass-through."""

    def __init__(self, source, device):
        self.source, self.device = source, device

    def __iter__(self):
        import torch

        cuda = getattr(self.device, "type", str(self.device)).startswith("cuda")
        if not cuda:
            yield from self.source
            return
        stream = torch.cuda.Stream(device=self.device)

        def send(batch):
            with torch.cuda.stream(stream):
                return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

        it = iter(self.source)
        nxt = next(it, None)
        nxt = send(nxt) if nxt is not None else None
        while nxt is not None:
            torch.cuda.current_stream(self.device).wait_stream(stream)
            current = nxt
            for v in current.values():
                if torch.is_tensor(v):
                    v.record_stream(torch.cuda.current_stream(self.device))
            following = next(it, None)
            nxt = send(following) if following is not None else None
            yield current
