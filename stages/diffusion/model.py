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
from ..common import log
from ..common.errors import ArtifactError, ConfigError

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


def warn_if_narrow(unet_config: dict, channels: int) -> None:
    """Warn when the UNet's full-resolution level has fewer channels than its input: its x0 estimate
    then cannot carry the input's detail, and every sample ends on that estimate (a 32-wide level on
    48 latent channels gave back a nearly clean val latent at decoded sPr 0.48, where the input
    has 0.90; docs/pretrained.md)."""
    width = int(unet_config["block_out_channels"][0])
    if width < channels:
        log.warn(
            f"the UNet's full-resolution level is {width} channels wide for {channels} input channels; "
            f"samples lose the detail it cannot carry — set unet.block_out_channels[0] to at least {channels} "
            "(--model-config)"
        )


def check_unet_config(unet_config: dict, head_size: bool = True) -> None:
    """Refuse widths diffusers' UNets cannot build or run: GroupNorm needs each level's width to be
    a multiple of ``norm_num_groups``, and in UNet2DModel (``head_size``) an attention level
    narrower than ``attention_head_dim`` gets zero heads (UNet2DConditionModel reads that field as
    the number of heads instead)."""
    widths = [int(w) for w in unet_config["block_out_channels"]]
    groups = int(unet_config.get("norm_num_groups", 32))
    for w in widths:
        if w % groups:
            raise ConfigError(
                f"unet.block_out_channels {widths}: {w} is not a multiple of unet.norm_num_groups {groups}; "
                "change one of them (--model-config)"
            )
    if not head_size:
        return
    head = int(unet_config.get("attention_head_dim") or 8)
    down = [w for w, kind in zip(widths, unet_config.get("down_block_types", ())) if "Attn" in kind]
    up = [w for w, kind in zip(widths[::-1], unet_config.get("up_block_types", ())) if "Attn" in kind]
    for w in down + up:
        if w < head:
            raise ConfigError(
                f"unet.block_out_channels {widths}: an attention level {w} wide is narrower than "
                f"unet.attention_head_dim {head} (no attention head fits); widen it or lower the head size "
                "(--model-config)"
            )


def build_unet(unet_config: dict, channels: int, sample_size: int):
    from diffusers import UNet2DModel

    check_unet_config(unet_config)

    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        **{k: (tuple(v) if isinstance(v, list) else v) for k, v in unet_config.items()},
    )
