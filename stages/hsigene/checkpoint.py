"""Reading a released HSIGene checkpoint safely and loading it strictly.

The public loader (LiPang/HSIGene 9f893a7 models/util.py L11-L20) calls ``torch.load`` with
full unpickling and inference_single.py L113 loads with ``strict=False``; here nothing but
tensors, containers and numbers is ever constructed, and a checkpoint whose keys or shapes
differ from the architecture is refused with the differences listed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ..common import log
from ..common.errors import InputError

CLIP_PREFIX = "cond_stage_model.transformer."
POSITION_IDS = CLIP_PREFIX + "text_model.embeddings.position_ids"

# Globals the fallback unpickler may construct: tensor rebuilders and plain containers.
_ADMITTED = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("collections", "OrderedDict"),
    ("torch", "Size"),
}


class Unadmitted:
    """Stands in for any other global a pickle names: never calls it, keeps only its name."""

    qualname = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return f"<refused {self.qualname}>"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ADMITTED or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        return type("Refused", (Unadmitted,), {"qualname": f"{module}.{name}"})


class _RestrictedPickle:
    """A ``pickle_module`` for torch.load whose Unpickler admits only ``_ADMITTED``."""

    Unpickler = _RestrictedUnpickler
    load = staticmethod(pickle.load)


def _torch_file(path: Path) -> dict:
    for mmap in (True, False):  # mmap keeps a 6 GB checkpoint out of RAM; legacy (non-zip) files need False
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError:
            break  # e.g. Lightning extras beside the weights: retry, admitting tensors and containers only
        except RuntimeError as exc:
            if not mmap:
                raise InputError(f"{path} is not a readable torch checkpoint ({exc}); check the file") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickle)
    except Exception as exc:
        raise InputError(
            f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {exc}); "
            "pass the released last.ckpt or a .safetensors file"
        ) from None


def _refused_in(value, where: str, found: list[str]) -> None:
    if isinstance(value, Unadmitted):
        found.append(f"{where} ({value.qualname})")
    elif isinstance(value, dict):
        for k, v in value.items():
            _refused_in(v, f"{where}[{k!r}]", found)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _refused_in(v, f"{where}[{i}]", found)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``{"state_dict": …}`` torch file or a ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"checkpoint {path} does not exist; pass the released HSIGene last.ckpt or a .safetensors file"
        )
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise InputError(f"{path} is not a readable .safetensors file ({exc})") from None
    data = _torch_file(path)
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise InputError(f"{path} holds no state_dict; expected the released HSIGene checkpoint")
    refused: list[str] = []
    _refused_in(state, "state_dict", refused)
    if refused:
        raise InputError(
            f"{path} carries objects that are not tensors, containers or numbers: "
            f"{', '.join(refused[:5])}{' …' if len(refused) > 5 else ''}; they were not unpickled. "
            "Use the released checkpoint, or save its state_dict as .safetensors on a trusted machine"
        )
    if state is not data:
        # Lightning extras beside the weights (hyper-parameters, callback states) are not needed;
        # the restricted unpickler stood in an inert marker for any object among them and never
        # constructed it (the markers are what _refused_in lists).
        extras: list[str] = []
        _refused_in({k: v for k, v in data.items() if k != "state_dict"}, "checkpoint", extras)
        if extras:
            log.warn(
                f"import: ignored {len(extras)} non-tensor object(s) outside the state_dict "
                f"(not unpickled): {', '.join(extras[:3])}"
            )
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(f"{path}: state_dict entries that are not tensors: {', '.join(map(str, bad[:5]))}")
    return dict(state)


def clip_has_text_model(model) -> bool:
    """transformers 4.x CLIPTextModel nests its layers under ``text_model``; 5.x does not."""
    return hasattr(model.cond_stage_model.transformer, "text_model")


def to_local_names(state: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Released names → this model's names (the CLIP text-model nesting differs across
    transformers versions; its ``position_ids`` buffer, saved by transformers 4.x, is checked
    to be 0…76 and dropped)."""
    out = {}
    nested = clip_has_text_model(model)
    for name, value in state.items():
        if name == POSITION_IDS:
            expected = torch.arange(value.shape[-1])
            if value.numel() and not torch.equal(value.reshape(-1).long(), expected):
                raise InputError(f"{name} is not 0…{value.shape[-1] - 1}; the checkpoint is not the released format")
            continue
        if not nested and name.startswith(CLIP_PREFIX + "text_model."):
            name = CLIP_PREFIX + name[len(CLIP_PREFIX + "text_model.") :]
        out[name] = value
    return out


def to_released_names(state: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """This model's names → the released names (for writing checkpoints in the released format)."""
    if clip_has_text_model(model):
        return dict(state)
    return {
        (CLIP_PREFIX + "text_model." + k[len(CLIP_PREFIX) :] if k.startswith(CLIP_PREFIX) else k): v
        for k, v in state.items()
    }


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown} … ({len(names)} in all)" if len(names) > limit else shown


def load_strict(model, released_state: dict[str, torch.Tensor]) -> None:
    """Load every tensor; any missing/unexpected key or shape mismatch is an InputError naming them."""
    state = to_local_names(released_state, model)
    expected = model.state_dict()
    for k in expected:  # a transformers version that saves position_ids: rebuild it (always 0…76)
        if k.endswith("embeddings.position_ids") and k not in state:
            state[k] = (
                expected[k].clone()
                if expected[k].device.type != "meta"
                else torch.arange(expected[k].shape[-1]).reshape(expected[k].shape)
            )
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} ≠ {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_listing(shapes, 4)}")
    if problems:
        raise InputError(
            "the checkpoint does not match the HSIGene architecture — "
            + "; ".join(problems)
            + ". Use the released HSIGene checkpoint (or pass --model-config for other widths)"
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True, assign=True)
    _materialise_unsaved_buffers(model)


def _materialise_unsaved_buffers(model) -> None:
    """Non-persistent buffers are not in any state dict: after loading a meta-built model the
    only one (CLIP's position ids, always 0…76) is rebuilt on the CPU."""
    for module_name, module in model.named_modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf is None or buf.device.type != "meta":
                continue
            if name != "position_ids":
                raise RuntimeError(f"internal: buffer {module_name}.{name} was not loaded")
            module.register_buffer(name, torch.arange(buf.shape[-1]).reshape(buf.shape), persistent=False)
