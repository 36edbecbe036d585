"""A tiny abundance model trained a fixed number of steps on Indian Pines generates maps
closer to the real training maps than random Dirichlet maps (in abundance space)."""

import h5py
import numpy as np
from abundance_quality import knn_precision, neighbour_variation, pixel_vectors

from stages.unmix import load_unmixing


def test_generated_maps_beat_random_dirichlet(ip_unmixing, tiny_samples):
    real = load_unmixing(ip_unmixing).training_abundances()
    with h5py.File(tiny_samples / "samples.h5") as h5:
        generated = h5["abundances"][...]
    n, k, h, w = generated.shape
    dirichlet = np.moveaxis(np.random.default_rng(0).dirichlet(np.ones(k), size=(n, h, w)), -1, 1)

    reference = pixel_vectors(real, 4000, seed=1)
    p_gen = knn_precision(reference, pixel_vectors(generated, 3000, seed=2))
    p_dir = knn_precision(reference, pixel_vectors(dirichlet, 3000, seed=2))
    nv_real, nv_gen, nv_dir = (neighbour_variation(m) for m in (real, generated, dirichlet))
    print(
        f"precision generated {p_gen:.3f} vs Dirichlet {p_dir:.3f}; neighbour variation "
        f"real {nv_real:.3f}, generated {nv_gen:.3f}, Dirichlet {nv_dir:.3f}"
    )
    assert p_gen > p_dir
    assert abs(nv_gen - nv_real) < abs(nv_dir - nv_real)


def test_quality_measures_match_their_definitions():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(50, 3))
    fake = np.vstack([real[:5] + 1e-9, rng.normal(size=(5, 3)) + 100])
    d = np.linalg.norm(real[:, None] - real[None], axis=-1)
    radii = np.sort(d, axis=1)[:, 3]
    inside = [(np.linalg.norm(f - real, axis=1) <= radii).any() for f in fake]
    assert knn_precision(real, fake, k=3) == np.mean(inside) == 0.5
    maps = np.zeros((1, 2, 2, 2))
    maps[0, 0, 0, 0] = maps[0, 1, 1, 1] = 1.0
    maps[0, 1, 0, 0] = maps[0, 0, 1, 1] = 0.0
    maps[0, :, 0, 1] = maps[0, :, 1, 0] = 0.5
    # Each of the 4 neighbour pairs differs by 0.5 + 0.5 summed over endmembers.
    assert neighbour_variation(maps) == 1.0
