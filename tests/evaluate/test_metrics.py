"""Every metric against a direct brute-force transcription of its paper formula on small
random sets, plus the extremes the formulas imply."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from stages.evaluate import distribution, diversity, fidelity, manifold, paired


def brute_pr(real, gen, k):
    """hsigene.txt eq. 8 literally: f(φ, Φ) = 1 iff ||φ - φ'|| <= ||φ' - NN_k(φ', Φ)|| for some φ'."""

    def f(phi, Phi):
        d_same = cdist(Phi, Phi)
        kth = np.array([np.sort(np.delete(row, i))[k - 1] for i, row in enumerate(d_same)])
        return float(np.mean([any(np.linalg.norm(p - q) <= r for q, r in zip(Phi, kth)) for p in phi]))

    return f(gen, real), f(real, gen)


def _clouds(seed, n_real=300, n_gen=260, bands=12):
    rng = np.random.default_rng(seed)
    scale = np.linspace(4, 0.2, bands)
    return rng.normal(size=(n_real, bands)) * scale, rng.normal(size=(n_gen, bands)) * scale * 1.2 + 0.4


@pytest.mark.parametrize("seed,k", [(0, 3), (1, 10)])
def test_spr_srec_equal_brute_force(seed, k, monkeypatch):
    real, gen = _clouds(seed)
    # Small chunks and window so the pruned band search, not one block, decides.
    monkeypatch.setattr(manifold, "ROW_CHUNK", 37)
    monkeypatch.setattr(manifold, "WINDOW", 40)
    res = manifold.precision_recall(real, gen, k)
    spr, srec = brute_pr(real, gen, k)
    assert abs(res.precision - spr) < 1e-6 and abs(res.recall - srec) < 1e-6
    assert 0.2 < spr < 1.0 and 0.2 < srec <= 1.0  # a non-trivial case


def test_spr_srec_float32_path_matches(monkeypatch):
    real, gen = _clouds(2)
    exact = manifold.precision_recall(real, gen, 5, dtype="float64")
    fast = manifold.precision_recall(real, gen, 5, dtype="float32")
    assert abs(exact.precision - fast.precision) <= 1 / len(gen) and abs(exact.recall - fast.recall) <= 1 / len(real)


def test_spr_srec_grouped_is_mean_of_groups():
    real, gen = _clouds(3, 200, 200)
    res = manifold.grouped_precision_recall(real, gen, 3, groups=4, seed=5)
    rng = np.random.default_rng(5)
    rp = np.array_split(real[rng.permutation(200)], 4)
    gp = np.array_split(gen[rng.permutation(200)], 4)
    expected = np.mean([brute_pr(r, g, 3) for r, g in zip(rp, gp)], axis=0)
    assert np.allclose([res.precision, res.recall], expected, atol=1e-9)


def test_spr_srec_extremes():
    real, _ = _clouds(4)
    same = manifold.precision_recall(real, real.copy(), 10)
    assert same.precision == 1.0 and same.recall == 1.0
    far = manifold.precision_recall(real, real + 1000.0, 10)
    assert far.precision == 0.0 and far.recall == 0.0


def test_spr_srec_refuses_too_small_sets():
    from stages.common.errors import ConfigError

    with pytest.raises(ConfigError, match="more than 10 spectra"):
        manifold.precision_recall(np.ones((5, 3)), np.ones((50, 3)), 10)


def test_point_fidelity_equals_eq16():
    rng = np.random.default_rng(5)
    real, gen = rng.uniform(0.1, 1, (90, 7)), rng.uniform(0.1, 1, (70, 7))
    direct = np.mean([max(g @ r / (np.linalg.norm(g) * np.linalg.norm(r)) for r in real) for g in gen])
    assert abs(fidelity.point_fidelity(gen, real) - direct) < 1e-6
    assert abs(fidelity.point_fidelity(real, real) - 1.0) < 1e-9
    # Spectra confined to disjoint band sets are orthogonal: cosine 0.
    a = np.zeros((20, 8))
    a[:, :4] = rng.uniform(1, 2, (20, 4))
    b = np.zeros((20, 8))
    b[:, 4:] = rng.uniform(1, 2, (20, 4))
    assert fidelity.point_fidelity(a, b) == pytest.approx(0.0, abs=1e-12)


def test_block_diversity_equals_eq17():
    rng = np.random.default_rng(6)
    real = rng.uniform(0.1, 1, (2, 5, 10, 10))
    gen = rng.uniform(0.1, 1, (3, 5, 8, 8))
    b, stride = 4, 2

    def cos(u, v):
        return u @ v / (np.linalg.norm(u) * np.linalg.norm(v))

    real_blocks = [
        real[i, :, r : r + b, c : c + b] for i in range(2) for r in range(0, 7, stride) for c in range(0, 7, stride)
    ]
    gen_blocks = [gen[i, :, r : r + b, c : c + b] for i in range(3) for r in range(0, 5, b) for c in range(0, 5, b)]
    direct = np.mean(
        [
            max(np.mean([cos(g[:, y, x], rb[:, y, x]) for y in range(b) for x in range(b)]) for rb in real_blocks)
            for g in gen_blocks
        ]
    )
    assert abs(fidelity.block_diversity(gen, real, b, stride) - direct) < 1e-6
    assert fidelity.block_diversity(real, real, b, b) == pytest.approx(1.0, abs=1e-9)
    assert (
        fidelity.block_diversity(gen, real, b, stride)
        <= fidelity.point_fidelity(gen.transpose(0, 2, 3, 1).reshape(-1, 5), real.transpose(0, 2, 3, 1).reshape(-1, 5))
        + 1e-12
    )


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_sd_equals_eq26_28():
    rng = np.random.default_rng(8)
    probs = _softmax(rng.normal(0, 2, (200, 5)))
    n_s = 5
    total = 0.0
    for i in range(n_s):
        V_i = [v for v in probs if np.argmax(v) == i]
        if not V_i:
            total += np.exp(0.0)
            continue
        p_yi = np.sum(V_i, axis=0) / len(V_i)  # eq. 26
        kl = np.mean([np.sum(v * np.log(v)) for v in V_i]) - np.sum(p_yi * np.log(p_yi))  # eq. 27
        total += np.exp(kl)
    assert abs(diversity.spectral_diversity(probs) - total / n_s) < 1e-6  # eq. 28
    one_hot = np.eye(5)[rng.integers(0, 5, 100)]
    assert diversity.spectral_diversity(one_hot) == pytest.approx(1.0)


def test_sdm_equals_eq29():
    rng = np.random.default_rng(9)
    probs = _softmax(rng.normal(0, 2, (4, 30, 6)))  # K = 4 images, 30 pixels, 6 classes
    kls = []
    for pix in range(30):
        p_y = probs[:, pix].mean(0)
        kls += [np.sum(probs[k, pix] * np.log(probs[k, pix] / p_y)) for k in range(4)]
    assert abs(diversity.spectral_diversity_multiple(probs) - np.exp(np.mean(kls))) < 1e-6
    same = np.repeat(probs[:1], 4, axis=0)
    assert diversity.spectral_diversity_multiple(same) == pytest.approx(1.0)


def test_fid_matches_eigenvalue_formula():
    rng = np.random.default_rng(10)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr((Σa Σb)^½) = Σ sqrt(eigenvalues of Σa Σb) (real and non-negative for SPD matrices).
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvals(ca @ cb).real, 0, None)))
    direct = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca) + np.trace(cb) - 2 * tr_sqrt
    assert distribution.frechet_distance(a, b) == pytest.approx(direct, rel=1e-6)
    assert distribution.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_and_is_against_definitions():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 1
    mean, std = distribution.kernel_inception_distance(x, y, subsets=1, subset_size=50)
    k = lambda u, v: (u @ v / 4 + 1) ** 3  # noqa: E731
    m = 50
    direct = (
        sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        + sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        - 2 * np.mean([k(a, b) for a in x for b in y])
    )
    assert mean == pytest.approx(direct, rel=1e-9) and std == 0.0
    p = _softmax(rng.normal(0, 3, (100, 4)))
    marg = p.mean(0)
    assert distribution.inception_score(p, splits=1)[0] == pytest.approx(
        np.exp(np.mean([np.sum(q * np.log(q / marg)) for q in p])), rel=1e-9
    )
    uniform_class = np.tile(np.eye(4)[0], (40, 1))
    assert distribution.inception_score(uniform_class, splits=1)[0] == pytest.approx(1.0)


def test_paired_metrics_equal_references():
    import torch
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from torchmetrics.functional.image import error_relative_global_dimensionless_synthesis, spectral_angle_mapper

    rng = np.random.default_rng(12)
    ref = rng.uniform(100, 2000, (2, 5, 24, 24))
    pred = ref + rng.normal(0, 60, ref.shape)
    r = paired.data_range(ref)
    sk_psnr = np.mean(
        [peak_signal_noise_ratio(ref[i, b], pred[i, b], data_range=r) for i in range(2) for b in range(5)]
    )
    sk_ssim = np.mean(
        [
            structural_similarity(
                ref[i, b], pred[i, b], data_range=r, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
            )
            for i in range(2)
            for b in range(5)
        ]
    )
    assert paired.mpsnr(pred, ref) == pytest.approx(sk_psnr, abs=1e-9)
    tp, tr = torch.from_numpy(pred), torch.from_numpy(ref)
    assert paired.mssim(pred, ref) == pytest.approx(sk_ssim, abs=1e-9)  # the same definition
    from torchmetrics.functional.image import structural_similarity_index_measure

    # torchmetrics reflect-pads before its 2-D window, so it differs slightly at the border.
    tm = structural_similarity_index_measure(tp.reshape(10, 1, 24, 24), tr.reshape(10, 1, 24, 24), data_range=r)
    assert paired.mssim(pred, ref) == pytest.approx(float(tm), abs=2e-4)
    assert paired.sam(pred, ref) == pytest.approx(float(spectral_angle_mapper(tp, tr)), abs=1e-9)
    assert paired.ergas(pred, ref) == pytest.approx(
        float(error_relative_global_dimensionless_synthesis(tp, tr, ratio=1)), rel=1e-9
    )
    assert paired.rmse(pred, ref) == pytest.approx(np.sqrt(np.mean((pred - ref) ** 2)))
    assert paired.mrae(pred, ref) == pytest.approx(np.mean(np.abs(pred - ref) / ref))
    assert paired.sam(ref, ref) == pytest.approx(0.0, abs=1e-6)
