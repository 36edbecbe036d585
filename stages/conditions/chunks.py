"""The condition stage's work, chunk by chunk: in this process or in a pool of worker processes.

The images of a run are split into ordered chunks of ``CHUNK`` images. ``compute_chunk`` reads
one chunk's images, runs every requested extractor on them (one ``batch`` call per kind, so the
network backends see the same batches whichever process runs them) and returns each image's PNG
files already encoded, its map means and its content embedding. ``chunk_results`` yields the
chunks in image order, computed here (``workers=0``) or by ``workers`` ``spawn``-ed processes
that each build the extractors once (pretrained weights loaded once per worker) and keep at most
two chunks each in flight, so memory is bounded by workers × chunk images, not by the sources.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..common.errors import ConfigError, InputError
from .common import MAP_KINDS, to_uint8
from .sources import SourceImage, SourceRef, SourceSpec, load_images, resize_labels, resize_rgb

CHUNK = 32  # images per chunk of work: one network batch of the pretrained backends
IN_FLIGHT = 2  # chunks queued per worker process


@dataclass
class ChunkPlan:
    """Everything a worker needs to compute chunks (small, picklable)."""

    kinds: list[str]  # the extracted kinds (not text), in output order
    extractors: dict[str, tuple[str, dict]]  # kind → (backend, make_extractor keyword arguments)
    specs: list[SourceSpec]
    size: int | None  # --size (None: the sources' own size)
    shape: tuple[int, int]  # (H, W) every image must have after resizing
    first_name: str  # the image ``shape`` was taken from (for the mismatch message)
    threads: int = 0  # per worker: torch / OpenCV threads (0: leave the defaults)


@dataclass
class ImageResult:
    files: dict[str, bytes]  # "rgb" and every map kind → encoded PNG
    means: dict[str, float]  # map kind → mean of the [0, 1] map
    content: np.ndarray | None = None  # the content embedding, when requested


def build_extractors(plan: ChunkPlan) -> dict:
    from .extractors import make_extractor

    return {kind: make_extractor(kind, backend, **kwargs) for kind, (backend, kwargs) in plan.extractors.items()}


def _inputs(extractor, images: list[SourceImage], rgbs: list[np.ndarray], size: int | None) -> list:
    if extractor.takes == "rgb":
        return rgbs
    if extractor.takes == "labels":
        return [resize_labels(image.labels, size) for image in images]
    return [image.cube for image in images]


def encode_png(image: np.ndarray) -> bytes:
    """(H, W) grey or (H, W, 3) RGB uint8 → PNG bytes (the bytes ``cv2.imwrite`` writes)."""
    import cv2

    array = np.ascontiguousarray(image[..., ::-1] if image.ndim == 3 else image)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise OSError("could not encode a PNG image")
    return encoded.tobytes()


def compute_chunk(plan: ChunkPlan, extractors: dict, refs: list[SourceRef]) -> list[ImageResult]:
    """Every requested kind of the images ``refs``, in their order."""
    images = load_images(plan.specs, refs)
    rgbs = [resize_rgb(image.rgb, plan.size) for image in images]
    for image, rgb in zip(images, rgbs):
        if rgb.shape[:2] != tuple(plan.shape):
            (h, w), (eh, ew) = rgb.shape[:2], plan.shape
            raise ConfigError(
                f"the source images have different sizes ({image.name} is {h}x{w}, {plan.first_name} is "
                f"{eh}x{ew}); pass --size N to resize them all to N×N"
            )
    outputs = {kind: extractors[kind].batch(_inputs(extractors[kind], images, rgbs, plan.size)) for kind in plan.kinds}
    results = []
    for j, rgb in enumerate(rgbs):
        files, means = {"rgb": encode_png(rgb)}, {}
        for kind in (k for k in plan.kinds if k in MAP_KINDS):
            files[kind] = encode_png(to_uint8(outputs[kind][j]))
            means[kind] = float(outputs[kind][j].mean())
        content = outputs["content"][j] if "content" in outputs else None
        results.append(ImageResult(files, means, content))
    return results


def chunk_results(
    plan: ChunkPlan, refs: list[SourceRef], workers: int, extractors: dict | None = None
) -> Iterator[tuple[int, list[ImageResult]]]:
    """(first image index, results) of every chunk, in image order. ``workers=0`` computes here
    with ``extractors``; otherwise a pool of ``workers`` processes does. Close the generator
    (``contextlib.closing``) to stop the pool: it cancels what has not started and waits for
    the running chunks, so no process outlives the call."""
    starts = range(0, len(refs), CHUNK)
    if workers == 0:
        for first in starts:
            yield first, compute_chunk(plan, extractors, refs[first : first + CHUNK])
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(starts)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(plan,),
    )
    todo, pending = iter(starts), deque()
    try:
        for first in todo:
            pending.append((first, pool.submit(_work, refs[first : first + CHUNK])))
            if len(pending) >= IN_FLIGHT * workers:
                break
        while pending:
            first, future = pending.popleft()
            try:
                results = future.result()
            except BrokenProcessPool:
                raise InputError(
                    "a condition worker process died (killed, e.g. out of memory?); rerun with fewer --workers, "
                    "or --workers 0 to compute in this process"
                ) from None
            following = next(todo, None)
            if following is not None:
                pending.append((following, pool.submit(_work, refs[following : following + CHUNK])))
            yield first, results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- inside a worker process ----------------------------------------------------------------
_PLAN: ChunkPlan | None = None
_EXTRACTORS: dict | None = None


def _init_worker(plan: ChunkPlan) -> None:
    global _PLAN, _EXTRACTORS
    _PLAN, _EXTRACTORS = plan, None


def _work(refs: list[SourceRef]) -> list[ImageResult]:
    global _EXTRACTORS
    if _EXTRACTORS is None:  # once per worker: pretrained backends load their weights here
        _EXTRACTORS = build_extractors(_PLAN)
        if _PLAN.threads:
            _set_threads(_PLAN.threads)
    return compute_chunk(_PLAN, _EXTRACTORS, refs)


def _set_threads(n: int) -> None:
    import cv2

    cv2.setNumThreads(n)
    torch = sys.modules.get("torch")  # only when an extractor imported it
    if torch is not None:
        torch.set_num_threads(n)


def worker_threads(workers: int) -> int:
    """Threads per worker process: the cores shared out (at least one)."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))
