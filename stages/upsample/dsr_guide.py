"""DSRNet over whole scenes, and as the HR-RGB guidance of ``upsample run`` (Pang et al., HSIGene, arXiv:2409.12470 Fig. 4:
LR HSI → its RGB bands → DSRNet → HR RGB → RGAN).

A latent diffusion model cannot be cut into tiles that reproduce a whole-image pass: GroupNorm
statistics and self-attention span the whole input. So DSRNet never sees the tiler's tiles.
It runs on a GLOBAL grid of windows fixed by the scene alone — cores of ``core`` LR pixels at
multiples of ``core`` from the scene's corner, each read with ``overlap`` pixels of context —
with noise keyed to scene positions (``dsr.position_noise``), and the overlapping HR windows
are blended with linear ramps. A pixel's guidance therefore depends on the scene and the seed
only: ``upsample run`` gives the same result for every ``--tile`` (tiled = untiled, exactly),
and memory stays bounded by the window size. The price is that seams between DSRNet windows
are softened by the blend, not removed; the tests bound them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..common.errors import ConfigError
from ..common.georef import no_georeference
from .dsr import DSRModel, lr_multiple, sample_window
from .guides import Guide


def _ramp(length: int, fade_start: int, fade_end: int) -> torch.Tensor:
    """1-D blend weight over a window of ``length`` HR pixels: rises linearly over ``fade_start``
    pixels at the start and falls over ``fade_end`` at the end (0 = a scene edge: no fade)."""
    w = torch.ones(length, dtype=torch.float64)
    idx = torch.arange(length, dtype=torch.float64)
    if fade_start:
        w = torch.minimum(w, (idx + 0.5) / fade_start)
    if fade_end:
        w = torch.minimum(w, (length - idx - 0.5) / fade_end)
    return w


class WindowedDSR:
    """DSRNet over a scene of ``height`` × ``width`` LR pixels on its global window grid.

    ``__call__(lr (3, h, w) in [-1, 1], origin)`` returns HR (3, h·s, w·s) for a region of the
    scene. Windows whose context reaches outside the region are skipped (their pixels lie in
    the caller's margin, which it crops away); pixels no complete window covers get bicubic.
    Finished windows are kept in a small LRU cache, so neighbouring tiles share them."""

    def __init__(
        self,
        dsr: DSRModel,
        height: int,
        width: int,
        core: int,
        overlap: int,
        steps: int,
        sampler: str,
        seed: int,
        item: int = 0,
    ):
        s = dsr.scale
        step = lr_multiple(dsr.multiple, s)
        if core < step or core % step or overlap < 0 or overlap % step:
            raise ConfigError(
                f"--dsr-window {core} / --dsr-overlap {overlap}: this ×{s} DSRNet needs multiples "
                f"of {step} LR pixels (window >= {step})"
            )
        self.dsr, self.height, self.width = dsr, int(height), int(width)
        self.core, self.overlap, self.steps, self.sampler = int(core), int(overlap), int(steps), sampler
        self.seed, self.item = int(seed), int(item)
        self.margin_lr = self.core + 2 * self.overlap  # farthest a blended pixel's windows reach
        self.align_lr = 1  # windows are global: any tile origin works
        self.cache: OrderedDict = OrderedDict()
        self.capacity = 16
        self.windows_sampled = 0

    def extent(self, k: int, size: int) -> tuple[int, int]:
        return max(0, k * self.core - self.overlap), min(size, (k + 1) * self.core + self.overlap)

    def _indices(self, lo: int, hi: int, size: int) -> list[int]:
        first = max(0, (lo - self.overlap) // self.core)
        last = min(-(-size // self.core) - 1, (hi - 1 + self.overlap) // self.core)
        return [k for k in range(first, last + 1) if self.extent(k, size)[0] < hi and self.extent(k, size)[1] > lo]

    def _weight(self, k: int, size: int) -> torch.Tensor:
        s = self.dsr.scale
        a0, a1 = self.extent(k, size)
        return _ramp((a1 - a0) * s, self.overlap * s if a0 > 0 else 0, self.overlap * s if a1 < size else 0)

    def _window(self, ki: int, kj: int, lr: torch.Tensor, r0: int, c0: int) -> torch.Tensor:
        key = (ki, kj)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        (a0, a1), (b0, b1) = self.extent(ki, self.height), self.extent(kj, self.width)
        s, f = self.dsr.scale, self.dsr.factor
        out = sample_window(
            self.dsr,
            lr[:, a0 - r0 : a1 - r0, b0 - c0 : b1 - c0],
            (a0 * s // f, b0 * s // f),
            self.steps,
            self.sampler,
            self.seed,
            self.item,
        )
        self.windows_sampled += 1
        self.cache[key] = out
        while len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        return out

    def __call__(self, lr: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
        import torch.nn.functional as F

        s = self.dsr.scale
        r0, c0 = int(origin[0]), int(origin[1])
        h, w = lr.shape[-2:]
        r1, c1 = r0 + h, c0 + w
        rows = [
            k
            for k in self._indices(r0, r1, self.height)
            if r0 <= self.extent(k, self.height)[0] and self.extent(k, self.height)[1] <= r1
        ]
        cols = [
            k
            for k in self._indices(c0, c1, self.width)
            if c0 <= self.extent(k, self.width)[0] and self.extent(k, self.width)[1] <= c1
        ]
        self.capacity = max(self.capacity, 2 * len(rows) * len(cols))
        acc = torch.zeros(3, h * s, w * s, dtype=torch.float64)
        weight = torch.zeros(1, h * s, w * s, dtype=torch.float64)
        lr = lr.float().cpu()
        for ki in rows:
            a0, a1 = self.extent(ki, self.height)
            wr = self._weight(ki, self.height)
            for kj in cols:
                b0, b1 = self.extent(kj, self.width)
                wgt = (wr[:, None] * self._weight(kj, self.width)[None, :])[None]
                out = self._window(ki, kj, lr, r0, c0).double()
                rs, cs = slice((a0 - r0) * s, (a1 - r0) * s), slice((b0 - c0) * s, (b1 - c0) * s)
                acc[:, rs, cs] += out * wgt
                weight[:, rs, cs] += wgt
        bicubic = F.interpolate(lr[None].double(), scale_factor=s, mode="bicubic", align_corners=False)[0]
        covered = weight > 0
        return torch.where(covered, acc / weight.clamp_min(1e-12), bicubic).float()


def scene_rgb_limits(cube: Path, rgb_idx: list[int], percent: float = 2.0, max_pixels: int = 2_000_000):
    """The 2 % stretch (physical units) of a scene's RGB bands, from a decimated read of
    ``cube.tif`` (bounded memory); nodata is ignored. Maps the scene into DSRNet's [-1, 1]."""
    import rasterio

    from ..spectral.preview import stretch_limits

    with no_georeference(), rasterio.open(cube) as src:
        step = max(1, int(np.ceil(np.sqrt(src.height * src.width / max_pixels))))
        shape = (3, -(-src.height // step), -(-src.width // step))
        data = src.read([i + 1 for i in rgb_idx], out_shape=shape).astype(np.float64)
        if src.nodata is not None and not np.isnan(src.nodata):
            data[data == src.nodata] = np.nan
    low, high = stretch_limits(np.moveaxis(data, 0, -1), percent)
    high = np.where(high > low, high, low + 1e-6)
    return low.astype(np.float64), high.astype(np.float64)


class DsrGuide(Guide):
    """HR RGB from DSRNet (Pang et al., HSIGene, arXiv:2409.12470 §3.3.2): the tile's bands nearest 640/550/470 nm, mapped
    into [-1, 1] by the scene's 2 % stretch, super-resolved on the scene's window grid, and
    mapped back into the RGAN's units."""

    name = "dsr"

    def __init__(
        self,
        rgb_idx: list[int],
        dsr: DSRModel,
        dsr_path: Path,
        scene_shape: tuple[int, int],
        low_model: np.ndarray,
        high_model: np.ndarray,
        steps: int,
        sampler: str,
        seed: int,
        core: int,
        overlap: int,
    ):
        super().__init__(rgb_idx, dsr.scale)
        self.windows = WindowedDSR(dsr, scene_shape[0], scene_shape[1], core, overlap, steps, sampler, seed)
        self.margin_lr, self.align_lr = self.windows.margin_lr, self.windows.align_lr
        self.inputs = (Path(dsr_path),)
        self.low = torch.as_tensor(np.asarray(low_model), dtype=torch.float32).view(3, 1, 1)
        self.span = torch.as_tensor(np.asarray(high_model) - np.asarray(low_model), dtype=torch.float32).view(3, 1, 1)
        self.details = {
            "path": str(dsr_path),
            "steps": int(steps),
            "sampler": sampler,
            "seed": int(seed),
            "window_lr": int(core),
            "overlap_lr": int(overlap),
            "stretch_model_units": {
                "low": [float(v) for v in np.ravel(low_model)],
                "high": [float(v) for v in np.ravel(high_model)],
            },
        }

    def __call__(self, lr, origin=(0, 0)):
        rgb = lr[0, self.rgb_idx].float().cpu()
        unit = (rgb - self.low) / self.span * 2.0 - 1.0
        hr = self.windows(unit, origin)
        return ((hr + 1.0) * 0.5 * self.span + self.low)[None].to(lr)
