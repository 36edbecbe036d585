"""``unmix``: endmembers and abundance maps (VCA + FCLS/LSQ, or the MSF-Diff scene network)."""

from .abundances import fcls_abundances, lsq_abundances
from .artifact import Unmixing, load_unmixing
from .scene_net import SCENE_NET_PRESETS
from .stage import METHODS, UnmixConfig, run
from .vca import vca

__all__ = [
    "METHODS",
    "SCENE_NET_PRESETS",
    "UnmixConfig",
    "Unmixing",
    "fcls_abundances",
    "load_unmixing",
    "lsq_abundances",
    "run",
    "vca",
]
