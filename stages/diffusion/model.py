"""The ``diffusion-model`` artifact layout, shared by every space:

unet/        diffusers ``save_pretrained`` (config.json + diffusion_pytorch_model.safetensors)
scheduler/   the training DDPMScheduler's config (samplers are built from it)
<space files, e.g. decoder/endmembers.csv>
manifest.json  config: space, preset, prediction_type, schedule, normalisation, inputs ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..artifacts import Artifact, open_artifact
from ..common.errors import ArtifactError

UNET_DIR, SCHEDULER_DIR = "unet", "scheduler"


@dataclass
class DiffusionModel:
    artifact: Artifact

    @property
    def config(self) -> dict:
        return self.artifact.config

    @property
    def space(self) -> str:
        return self.config["space"]

    @property
    def sample_size(self) -> int:
        return int(self.config["sample_size"])

    @property
    def channels(self) -> int:
        return int(self.config["channels"])

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.config["model"]["unet"]["block_out_channels"]) - 1)

    def load_unet(self, device="cpu"):
        from diffusers import UNet2DModel

        unet = UNet2DModel.from_pretrained(str(self.artifact.path / UNET_DIR), low_cpu_mem_usage=False)
        return unet.to(device).eval()

    def training_scheduler_config(self) -> dict:
        from diffusers import DDPMScheduler

        return dict(DDPMScheduler.from_pretrained(str(self.artifact.path / SCHEDULER_DIR)).config)


def load_model(path: str | Path) -> DiffusionModel:
    artifact = open_artifact(path, "diffusion-model")
    for name in (
        f"{UNET_DIR}/config.json",
        f"{UNET_DIR}/diffusion_pytorch_model.safetensors",
        f"{SCHEDULER_DIR}/scheduler_config.json",
    ):
        artifact.file(name)
    if "space" not in artifact.config:
        raise ArtifactError(f"{path} records no diffusion space; rebuild it with `hsigen train-diffusion`")
    return DiffusionModel(artifact)


def build_unet(unet_config: dict, channels: int, sample_size: int):
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        **{k: (tuple(v) if isinstance(v, list) else v) for k, v in unet_config.items()},
    )
