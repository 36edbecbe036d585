"""Options shared by commands, each declared once.

``-v/--verbose``, ``-q/--quiet`` and ``--config`` are not written in command signatures:
``groups.HsigenGroup`` adds ``shared_options()`` to every command when the app is built, so
``hsigen -v ingest ...`` and ``hsigen ingest ... -v`` both work. The other aliases below are
used in signatures as ``out: Out = ...``.

``--config FILE.yaml`` is eager: its keys become the command's defaults (Click's
``default_map``), so any option can come from the file and the command line still wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from stages.common import log
from stages.common.errors import ConfigError

from .choices import Preset as PresetChoice


def _load_config(ctx: typer.Context, param: typer.CallbackParam, value: Optional[str]):
    if value is None:
        return value
    import yaml

    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"--config {path} does not exist; give a YAML file of option: value pairs")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must be a mapping of option names to values")
    known = {p.name for p in ctx.command.params if p.name} - {"config"}
    defaults = {}
    for key, item in data.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name not in known:
            raise ConfigError(
                f"--config {path}: {key!r} is not an option of this command; known: "
                + ", ".join(sorted(k.replace("_", "-") for k in known))
            )
        defaults[name] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _set_verbosity(ctx: typer.Context, param: typer.CallbackParam, value):
    if param.name == "verbose" and value:
        log.set_verbosity(int(value))
    elif param.name == "quiet" and value:
        log.set_verbosity(-1)
    return value


# The single declarations of the shared options. Commands do not name them in their
# signatures (``shared_options`` adds them); a command that still does (a branch written
# before this) keeps its own copy and gets no second one.
Verbose = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        callback=_set_verbosity,
        show_default=False,
        help="More logging; -v also shows tracebacks.",
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", callback=_set_verbosity, help="Only errors on stderr.")]
ConfigFile = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        help="YAML file of option values; the command line wins.",
        is_eager=True,
        callback=_load_config,
        show_default=False,
    ),
]
SHARED_NAMES = ("verbose", "quiet", "config")


def _shared(verbose: Verbose = 0, quiet: Quiet = False, config: ConfigFile = None) -> None:
    """Only a carrier of the three declarations above."""


def shared_options() -> list:
    """Fresh Click parameters ``-v``, ``-q`` and ``--config`` for one command; they act through
    their callbacks, so they are not passed to the command's function."""
    carrier = typer.Typer()
    carrier.command()(_shared)
    params = typer.main.get_command(carrier).params
    for param in params:
        param.expose_value = False
    return params


Out = Annotated[
    Path, typer.Option("--out", "-o", help="Output artifact directory (created atomically).", show_default=False)
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing artifact at --out.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same result on CPU).")]
Device = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N.")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Preset = Annotated[
    PresetChoice,
    typer.Option(
        "--preset",
        help="Model size: tiny (CPU minutes) or paper (published); paper-hud / paper-hyperldm for "
        "train-diffusion's abundance / latent spaces.",
    ),
]
ModelConfig = Annotated[
    Optional[Path],
    typer.Option(
        "--model-config",
        help="YAML file overriding any architecture or optimiser field of the preset "
        "(nested sections as nested mappings); unknown keys are refused.",
        show_default=False,
    ),
]


def model_config_args(path: Optional[Path]) -> dict:
    """``resolve_preset``'s ``model_config`` and ``source`` for a ``--model-config`` path (or none)."""
    if path is None:
        return {}
    from stages.training.presets import read_model_config

    return {"model_config": read_model_config(path), "source": f"--model-config {path}"}


DryRun = Annotated[bool, typer.Option("--dry-run", help="Print parameter counts and exit without training.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint of an interrupted run.")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Batch size (default: the preset's).")]
LearningRate = Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate (default: the preset's).")]
CheckpointEvery = Annotated[
    int,
    typer.Option(
        "--checkpoint-every", help="Write a resumable checkpoint every N steps (0 = only when training ends)."
    ),
]
Steps = Annotated[Optional[int], typer.Option("--steps", help="Training steps (default: the preset's).")]
Loader = Annotated[
    str,
    typer.Option(
        "--loader",
        help="auto | memory | stream: read training batches from disk (stream; bounded memory) or load "
        "the dataset (memory). auto streams several sources or one above 512 MiB.",
    ),
]
Workers = Annotated[int, typer.Option("--workers", help="DataLoader worker processes when streaming (0: in-process).")]
Compile = Annotated[
    bool, typer.Option("--compile", help="torch.compile the training forward (GPU speed-up; the first steps compile).")
]
ChannelsLast = Annotated[
    bool,
    typer.Option(
        "--channels-last", help="NHWC memory format for weights and batches (faster convolutions on tensor-core GPUs)."
    ),
]
