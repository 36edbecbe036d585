"""``evaluate``: the seed papers' metrics for generated HSIs (sPr/sRec, F_p/D_b, SD/SDM,
spectral FID/KID/IS, paired metrics, mSAD), the classic RGB FID when the user has the FID
Inception weights and the pixel classifier the spectral metrics need (the downstream-task
check is ``stages/downstream``). See report.py for the main entry point."""

from .report import ALL_METRICS, EvaluateConfig
from .train import TrainClassifierConfig

__all__ = ["ALL_METRICS", "EvaluateConfig", "TrainClassifierConfig"]
