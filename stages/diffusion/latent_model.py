"""The files of a latent ``diffusion-model`` beyond the shared ``model.py`` layout, and loading
its denoiser: ``controlnet/`` (diffusers ControlNetModel) and ``adapters.safetensors`` (global
condition projections, null tokens, HyperLDM's RGB encoder); ``unet/`` holds a
UNet2DConditionModel."""

from __future__ import annotations

from .model import UNET_DIR

CONTROLNET_DIR, ADAPTERS_FILE = "controlnet", "adapters.safetensors"


def load_denoiser(model, device="cpu"):
    """The ``ControlledDenoiser`` of a latent ``diffusion-model`` artifact, in eval mode."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    from ..common.errors import ArtifactError
    from ..training import load_weights
    from .control import ControlledDenoiser, RGBConditionEncoder, preconditioning_of

    path = model.artifact.path
    for name in (
        f"{CONTROLNET_DIR}/config.json",
        f"{CONTROLNET_DIR}/diffusion_pytorch_model.safetensors",
        ADAPTERS_FILE,
    ):
        model.artifact.file(name)
    cfg = model.config
    unet = UNet2DConditionModel.from_pretrained(str(path / UNET_DIR), local_files_only=True, low_cpu_mem_usage=False)
    controlnet = ControlNetModel.from_pretrained(
        str(path / CONTROLNET_DIR), local_files_only=True, low_cpu_mem_usage=False
    )
    rgb = cfg["model"]["rgb_condition"]
    encoder = RGBConditionEncoder(int(cfg["model"]["rgb_channels"]), int(cfg["autoencoder"]["factor"])) if rgb else None
    denoiser = ControlledDenoiser(
        unet, controlnet, cfg.get("global_dims", {}), encoder, preconditioning_of(cfg["model"])
    )
    missing, unexpected = denoiser.load_state_dict(load_weights(path / ADAPTERS_FILE), strict=False)
    missing = [k for k in missing if not k.startswith(("unet.", "controlnet."))]
    if missing or unexpected:
        raise ArtifactError(
            f"{path}/{ADAPTERS_FILE} does not match the model (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}); rebuild it with `hsigen train-diffusion`"
        )
    return denoiser.to(device).eval()
