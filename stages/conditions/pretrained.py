"""Pretrained backends that load the user's LOCAL weight files; nothing is ever downloaded.

Every annotator network (HED here, M-LSD in ``mlsd_net.py``, PiDiNet in ``pidinet.py``) is
loaded by ``load_annotator``: parameter names and shapes must match the file exactly
(``strict=True``), otherwise one InputError names the file that was expected. Files:
``.safetensors`` or a PyTorch state dict (``.pth``/``.pt``/``.bin``, read with
``weights_only=True``; a ``{"state_dict": ...}`` wrapper and DataParallel ``module.``
prefixes are accepted).

HED network (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2 uses HED [38], Xie & Tu 2015): five VGG-style stages of 3×3
convolutions + ReLU (2, 2, 3, 3, 3 convolutions; max-pooling before stages 2-5), each with a
1×1 "side output" projection to one channel; the side outputs are upsampled to the input size,
averaged and passed through a sigmoid (the fusion of the ControlNet HED annotator). Parameter
names follow the ControlNet annotator checkpoint (``ControlNetHED.pth`` of
lllyasviel/Annotators): ``norm`` (1, 3, 1, 1) subtracted from the 0-255 RGB input, then
``block{1..5}.convs.{j}.weight|bias`` and ``block{1..5}.projection.weight|bias``. Channel widths
and convolution counts are read from the file, so any network of that layout loads.

CLIP (Pang et al., HSIGene, arXiv:2409.12470 §3.1.2 "Content" uses CLIP [42]): a transformers ``save_pretrained``
directory of a ``CLIPModel`` with its image processor (``preprocessor_config.json``) and
tokenizer files, opened with ``local_files_only=True`` and the hub offline.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np

from ..common.errors import InputError
from ..common.weights import load_strict, read_state_dict
from .common import Extractor

HED_STAGES = 5


def _torch_nn():
    import torch

    return torch, torch.nn


def build_hed(widths: list[int], depths: list[int]):
    """The HED network with ``widths[k]`` channels and ``depths[k]`` convolutions in stage k."""
    torch, nn = _torch_nn()

    class HEDStage(nn.Module):
        def __init__(self, c_in: int, c_out: int, depth: int):
            super().__init__()
            self.convs = nn.ModuleList(
                [nn.Conv2d(c_in if j == 0 else c_out, c_out, 3, padding=1) for j in range(depth)]
            )
            self.projection = nn.Conv2d(c_out, 1, 1)  # the stage's side output (HED §3)

        def forward(self, x, pool: bool):
            if pool:
                x = nn.functional.max_pool2d(x, 2, 2)
            for conv in self.convs:
                x = nn.functional.relu(conv(x))
            return x, self.projection(x)

    class HEDNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.Parameter(torch.zeros(1, 3, 1, 1))
            c_in = 3
            for k in range(HED_STAGES):
                setattr(self, f"block{k + 1}", HEDStage(c_in, widths[k], depths[k]))
                c_in = widths[k]

        def forward(self, rgb_0_255):
            """(N, 3, H, W) RGB in 0..255 → (N, 1, H, W) edge probability."""
            size = rgb_0_255.shape[-2:]
            x, sides = rgb_0_255 - self.norm, []
            for k in range(HED_STAGES):
                x, side = getattr(self, f"block{k + 1}")(x, pool=k > 0)
                sides.append(nn.functional.interpolate(side, size=size, mode="bilinear", align_corners=False))
            # Fusion of the side outputs: their mean, then a sigmoid.
            return torch.sigmoid(torch.stack(sides, dim=0).mean(dim=0))

    return HEDNetwork()


def hed_layout(state: dict, path: Path, flag: str) -> tuple[list[int], list[int]]:
    expected = "norm, block1..5.convs.J.weight|bias, block1..5.projection.weight|bias"
    widths, depths = [], []
    for k in range(1, HED_STAGES + 1):
        convs = sorted(int(m.group(1)) for key in state if (m := re.fullmatch(rf"block{k}\.convs\.(\d+)\.weight", key)))
        if not convs or f"block{k}.projection.weight" not in state or "norm" not in state:
            raise InputError(
                f"{flag} {path} does not hold HED weights in the ControlNet annotator layout "
                f"(expected keys {expected}); see `hsigen condition --help`"
            )
        depths.append(len(convs))
        widths.append(int(state[f"block{k}.convs.{convs[-1]}.weight"].shape[0]))
    return widths, depths


def load_annotator(weights, flag: str, expected: str, build, device: str = "cpu"):
    """(network in eval mode, torch.device) of a local annotator file, loaded with strict=True.

    ``build(state, path)`` makes the network (it may read sizes from the state dict);
    ``expected`` names the file the user should give (e.g. "the M-LSD large weights
    (mlsd_large_512_fp32.pth)") in every error."""
    from ..common.runtime import resolve_device

    path = Path(weights)
    state = read_state_dict(path, flag, expected)
    network = load_strict(build(state, path), state, flag, path, expected)
    dev = resolve_device(device)
    return network.to(dev).eval().requires_grad_(False), dev


def load_hed(weights, device: str = "cpu", flag: str = "--hed-weights"):
    """The HED network of a local weights file in the ControlNet annotator layout."""
    return load_annotator(
        weights,
        flag,
        "a local HED weights file in the ControlNet annotator layout (ControlNetHED.pth)",
        lambda state, path: build_hed(*hed_layout(state, path, flag)),
        device,
    )


def infer(network, batch_nchw: np.ndarray, device) -> np.ndarray:
    """The network's output for a float32 (N, C, H, W) batch, as numpy."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch_nchw, dtype=np.float32)).to(device)
    with torch.inference_mode():
        return network(x).float().cpu().numpy()


class ClipBundle:
    """A local CLIP model with its image processor and tokenizer (each loaded when first needed)."""

    def __init__(self, model_dir: Path, device, flag: str):
        from transformers import CLIPModel

        self.dir, self.device, self.flag = model_dir, device, flag
        self.model = CLIPModel.from_pretrained(str(model_dir), local_files_only=True).to(device).eval()
        self.dim = int(self.model.config.projection_dim)
        self._processor = self._tokenizer = None

    def processor(self):
        if self._processor is None:
            import transformers

            cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
            if not (self.dir / "preprocessor_config.json").is_file():
                raise InputError(
                    f"{self.flag} {self.dir} has no preprocessor_config.json; save the "
                    "CLIPProcessor (or CLIPImageProcessor) into it with save_pretrained"
                )
            self._processor = cls.from_pretrained(str(self.dir), local_files_only=True)
        return self._processor

    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import CLIPTokenizer

            if not any((self.dir / f).is_file() for f in ("tokenizer.json", "vocab.json")):
                raise InputError(
                    f"{self.flag} {self.dir} has no tokenizer files (tokenizer.json or "
                    "vocab.json + merges.txt); save the CLIPTokenizer into it with save_pretrained"
                )
            self._tokenizer = CLIPTokenizer.from_pretrained(str(self.dir), local_files_only=True)
        return self._tokenizer

    @staticmethod
    def _features(output):
        # transformers ≥ 5 returns a model output whose pooler_output is projected; 4.x a tensor.
        return output if not hasattr(output, "pooler_output") else output.pooler_output

    def image_features(self, images: list[np.ndarray]) -> np.ndarray:
        import torch

        inputs = self.processor()(images=[np.asarray(im) for im in images], return_tensors="pt")
        with torch.inference_mode():
            features = self._features(
                self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device))
            )
        return _l2(features.float().cpu().numpy())

    def text_features(self, texts: list[str]) -> np.ndarray:
        import torch

        inputs = self.tokenizer()(texts, padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            features = self._features(
                self.model.get_text_features(
                    input_ids=inputs["input_ids"].to(self.device),
                    attention_mask=inputs["attention_mask"].to(self.device),
                )
            )
        return _l2(features.float().cpu().numpy())


def _l2(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _cached_clip(model_dir: str, device: str, flag: str) -> ClipBundle:
    from ..common.runtime import resolve_device

    return ClipBundle(Path(model_dir), resolve_device(device), flag)


def load_clip(model_dir, device: str = "cpu", flag: str = "--clip-model") -> ClipBundle:
    """A local CLIP ``save_pretrained`` directory (never downloads)."""
    path = Path(model_dir)
    if not (path.is_dir() and (path / "config.json").is_file()):
        raise InputError(
            f"{flag} {path} is not a local CLIP model directory (needs config.json and the "
            "weights written by CLIPModel.save_pretrained); nothing is downloaded"
        )
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        return _cached_clip(str(path.resolve()), str(device), flag)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{flag} {path} could not be loaded as a CLIPModel ({exc})") from exc


class ClipExtractor(Extractor):
    """Base of the ``clip`` content and text backends: one local CLIP model, L2-normalised features."""

    backend = "clip"

    def __init__(self, model_dir, device: str = "cpu"):
        self.model_dir = str(model_dir)
        self.clip = load_clip(model_dir, device, flag="--clip-model")

    def settings(self) -> dict:
        return {"backend": self.backend, "model": self.model_dir, "dim": self.clip.dim, "normalised": "l2"}
