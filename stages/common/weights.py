"""Reading a user's local weight files (annotators, CLIP-free networks, the FID Inception):
one reader and one strict check for every pretrained backend. Never a full unpickle:
``.safetensors`` or ``torch.load(weights_only=True)``; nothing is ever downloaded."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError

SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
# Batch-norm batch counters play no part in inference; files saved before torch 1.1 lack them.
OPTIONAL_SUFFIXES = (".num_batches_tracked",)


def read_state_dict(path, flag: str, expected: str) -> dict:
    """A flat {name: tensor} dict from ``path``; a ``{"state_dict": ...}`` wrapper and
    DataParallel ``module.`` prefixes are unwrapped. ``expected`` names the file the user should
    give (e.g. "the M-LSD large weights (mlsd_large_512_fp32.pth)") in every error."""
    import torch

    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a weights file" if path.is_dir() else "does not exist"
        raise InputError(f"{flag} {path} {what}; give the path of {expected} (nothing is downloaded)")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"{flag} {path}: unknown file type {suffix or '(none)'}; give {expected} as "
            ".safetensors or a .pth/.pt/.bin state dict"
        )
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"{flag} {path} could not be read ({reason}); give {expected}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{flag} {path} holds a {type(state).__name__}, not a state dict of tensors; give {expected}")
    return {re.sub(r"^module\.", "", k): v for k, v in state.items()}


def load_strict(network, state: dict, flag: str, path, expected: str):
    """Load ``state`` into ``network`` with strict=True after checking names and shapes, so a
    wrong file is one InputError that says what differs, never a torch traceback."""
    own = network.state_dict()
    optional = {k for k in own if k.endswith(OPTIONAL_SUFFIXES)}
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    problems = [
        f"{len(names)} {what} key(s) {names[:3]}"
        for what, names in (("missing", missing), ("unexpected", unexpected))
        if names
    ]
    if wrong:
        problems.append(
            f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, expected "
            f"{tuple(own[wrong[0]].shape)} ({len(wrong)} tensor(s) differ)"
        )
    if problems:
        raise InputError(f"{flag} {path} is not {expected}: {'; '.join(problems)}")
    network.load_state_dict({**{k: own[k] for k in optional}, **state}, strict=True)
    return network
