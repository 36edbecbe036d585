"""Spectral precision and recall, sPr / sRec (Pang et al., HSIGene, arXiv:2409.12470 §4.1.3, eq. 8), and density /
coverage (Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for Generative
Models", ICML 2020, §3) from the same k-NN balls of the real set.

sPr = share of generated spectra inside the real manifold, sRec = share of real spectra inside
the generated manifold, where a set's manifold is the union of balls around each of its points
with radius = distance to that point's k-th nearest neighbour in the same set (Kynkäänniemi et
al. 2019, the paper's [65]). Density = mean over generated points of the number of real balls
containing them, divided by k (Naeem et al. eq. 3: rewards samples where real points are dense,
so a few far outliers in the real set do not inflate it); coverage = share of real balls that
contain at least one generated point (eq. 4: a diversity score that a real-ball outlier cannot
fill). Density and coverage use strict ``<`` like the authors' ``prdc`` package.

Exact over 100k × 100k sets without a 100k × 100k matrix: points are sorted by their projection
on the real set's first principal component. Because |pc1(x) - pc1(y)| <= ||x - y||, a point's
k-NN ball, and any ball that can contain it, only reaches points within a band of that sorted
order; each chunk of rows is compared with its band only (chunked BLAS distance blocks). The
band is derived from upper bounds on the radii, so the result is exact; on data without a
dominant direction the band is simply the whole set and the cost is that of a plain pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.errors import ConfigError

ROW_CHUNK = 512
WINDOW = 2048  # columns around a row chunk used for the first radius upper bound
BIG_RADIUS_QUANTILE = 0.95
FLOAT64_MAX_POINTS = 4096


@dataclass
class ManifoldResult:
    precision: float
    recall: float
    k: int
    n_real: int
    n_generated: int
    groups: int = 1
    density: float | None = None
    coverage: float | None = None

    def as_dict(self) -> dict:
        return {
            "spr": self.precision,
            "srec": self.recall,
            "density": self.density,
            "coverage": self.coverage,
            "k": self.k,
            "groups": self.groups,
            "n_real": self.n_real,
            "n_generated": self.n_generated,
        }


def _sqdist(a, a_sq, b, b_sq):
    import torch

    # ||a||² + ||b||² - 2 a·b, one BLAS call per block; clamp the rounding below zero.
    d2 = torch.addmm(b_sq[None, :], a, b.T, alpha=-2.0)
    d2.add_(a_sq[:, None]).clamp_(min=0.0)
    return d2


class _Sorted:
    """One point set in principal-axis order, as torch tensors."""

    def __init__(self, points: np.ndarray, centre: np.ndarray, scale: float, axis: np.ndarray, dtype):
        import torch

        x = (np.asarray(points, dtype=np.float64) - centre) / scale
        key = x @ axis
        self.order = np.argsort(key, kind="stable")
        self.key = key[self.order]
        self.x = torch.from_numpy(x[self.order]).to(dtype).contiguous()
        self.sq = self.x.square().sum(1)
        self.n = len(self.key)

    def span(self, lo: float, hi: float) -> tuple[int, int]:
        return int(np.searchsorted(self.key, lo, "left")), int(np.searchsorted(self.key, hi, "right"))


def _slack(s: _Sorted) -> float:
    # Rounding margin for the projection bound; including extra columns never changes the result.
    return 1e-6 * (1.0 + float(np.abs(s.key).max(initial=0.0)))


def _knn_radii(s: _Sorted, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point (sorted order)."""
    import torch

    radii = np.empty(s.n, dtype=np.float64)
    slack = _slack(s)

    def smallest(a, b, c0, c1):
        d2 = _sqdist(s.x[a:b], s.sq[a:b], s.x[c0:c1], s.sq[c0:c1])
        return torch.topk(d2, min(k + 1, c1 - c0), dim=1, largest=False, sorted=False).values

    for a in range(0, s.n, ROW_CHUNK):
        b = min(s.n, a + ROW_CHUNK)
        w0, w1 = max(0, a - WINDOW // 2), min(s.n, b + WINDOW // 2)
        # Upper bound from a window of neighbours in sorted order; k + 1 because the point
        # itself (distance 0) is among them, so the largest of the k + 1 is the k-th neighbour.
        best = smallest(a, b, w0, w1)
        upper = np.sqrt(best.amax(1).double().numpy())
        c0, c1 = s.span(float(np.min(s.key[a:b] - upper)) - slack, float(np.max(s.key[a:b] + upper)) + slack)
        extra = [best]
        if c0 < w0:
            extra.append(smallest(a, b, c0, w0))
        if c1 > w1:
            extra.append(smallest(a, b, w1, c1))
        if len(extra) > 1:
            best = torch.topk(torch.cat(extra, 1), k + 1, dim=1, largest=False, sorted=False).values
        radii[a:b] = best.amax(1).double().numpy()
    return np.sqrt(radii)


def _covered(query: _Sorted, ref: _Sorted, radii: np.ndarray, counting: bool = False):
    """For each query point (sorted order): is it inside at least one ball of ``ref`` (``<=``)?

    With ``counting``, also (per query point) how many balls contain it strictly and (per ref
    ball, in ref's sorted order) whether any query point lies strictly inside it: density and
    coverage come from the same distance blocks at almost no extra cost."""
    import torch

    dtype = ref.x.dtype
    r2 = torch.from_numpy(radii**2).to(dtype)
    # Balls with unusually large radii are checked against every query point; the rest only
    # within the projection band of width = the largest remaining radius.
    limit = float(np.quantile(radii, BIG_RADIUS_QUANTILE)) if len(radii) else 0.0
    big = np.flatnonzero(radii > limit)
    small = np.flatnonzero(radii <= limit)  # still in sorted key order
    small_key = ref.key[small]
    small_idx = torch.from_numpy(small)
    xs, sqs, r2s = ref.x[small_idx], ref.sq[small_idx], r2[small_idx]
    big_idx = torch.from_numpy(big)
    xb, sqb, r2b = ref.x[big_idx], ref.sq[big_idx], r2[big_idx]
    slack = max(_slack(ref), _slack(query))
    inside = np.zeros(query.n, dtype=bool)
    counts = np.zeros(query.n, dtype=np.int64)
    hit_small = torch.zeros(len(small), dtype=torch.bool)
    hit_big = torch.zeros(len(big), dtype=torch.bool)
    for a in range(0, query.n, ROW_CHUNK):
        b = min(query.n, a + ROW_CHUNK)
        rows, rows_sq = query.x[a:b], query.sq[a:b]
        hit = torch.zeros(b - a, dtype=torch.bool)
        n_in = torch.zeros(b - a, dtype=torch.int64)
        c0 = int(np.searchsorted(small_key, query.key[a] - limit - slack, "left"))
        c1 = int(np.searchsorted(small_key, query.key[b - 1] + limit + slack, "right"))
        blocks = []
        if c1 > c0:
            blocks.append((_sqdist(rows, rows_sq, xs[c0:c1], sqs[c0:c1]) - r2s[None, c0:c1], hit_small, c0, c1))
        if len(big):
            blocks.append((_sqdist(rows, rows_sq, xb, sqb) - r2b[None, :], hit_big, 0, len(big)))
        for diff, ball_hit, lo, hi in blocks:
            hit |= diff.amin(1) <= 0
            if counting:
                strict = diff < 0
                n_in += strict.sum(1)
                ball_hit[lo:hi] |= strict.any(0)
        inside[a:b] = hit.numpy()
        counts[a:b] = n_in.numpy()
    if not counting:
        return inside
    ball_hit = np.zeros(ref.n, dtype=bool)
    ball_hit[small] = hit_small.numpy()
    ball_hit[big] = hit_big.numpy()
    return inside, counts, ball_hit


def _frame(real: np.ndarray):
    """Centre/scale on the real set (distances keep their order) and its first principal axis."""
    centre = real.mean(0)
    sample = real[:: max(1, len(real) // 20_000)] - centre
    scale = float(np.sqrt(np.mean(sample**2))) or 1.0
    _, _, vt = np.linalg.svd(sample / scale, full_matrices=False)
    return centre, scale, vt[0]


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 10, dtype: str | None = None) -> ManifoldResult:
    """Exact sPr / sRec (eq. 8) of two spectra sets (n, B), in the units given."""
    import torch

    real = np.asarray(real)
    generated = np.asarray(generated)
    if k < 1:
        raise ConfigError("--k must be at least 1")
    if min(len(real), len(generated)) <= k:
        raise ConfigError(
            f"sPr/sRec with --k {k} needs more than {k} spectra in each set (have {len(real)} real, "
            f"{len(generated)} generated); lower --k or give more data"
        )
    if dtype is None:
        dtype = "float64" if max(len(real), len(generated)) <= FLOAT64_MAX_POINTS else "float32"
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    centre, scale, axis = _frame(real)
    r = _Sorted(real, centre, scale, axis, tdtype)
    g = _Sorted(generated, centre, scale, axis, tdtype)
    real_radii = _knn_radii(r, k)
    gen_radii = _knn_radii(g, k)
    inside, counts, ball_hit = _covered(g, r, real_radii, counting=True)
    recall = float(_covered(r, g, gen_radii).mean())
    return ManifoldResult(
        float(inside.mean()),
        recall,
        k,
        len(real),
        len(generated),
        density=float(counts.mean() / k),
        coverage=float(ball_hit.mean()),
    )


def grouped_precision_recall(
    real: np.ndarray, generated: np.ndarray, k: int = 10, groups: int = 10, seed: int = 0, dtype: str | None = None
) -> ManifoldResult:
    """The paper's cheaper variant: shuffle both sets, split each into ``groups`` parts,
    compute eq. 8 per pair of parts and average (Pang et al., HSIGene, arXiv:2409.12470 §4.1.3: 10 groups)."""
    if groups < 1:
        raise ConfigError("--groups must be at least 1")
    rng = np.random.default_rng(seed)
    real_parts = np.array_split(np.asarray(real)[rng.permutation(len(real))], groups)
    gen_parts = np.array_split(np.asarray(generated)[rng.permutation(len(generated))], groups)
    results = [precision_recall(rp, gp, k, dtype) for rp, gp in zip(real_parts, gen_parts)]
    mean = lambda name: float(np.mean([getattr(x, name) for x in results]))  # noqa: E731
    return ManifoldResult(
        mean("precision"), mean("recall"), k, len(real), len(generated), groups, mean("density"), mean("coverage")
    )
