"""``hsigen evaluate downstream --task ...``: does synthetic data help the user's own task?

One protocol (``protocol.py``: real / real + synthetic / synthetic-only training sets, fixed
model and step budget, ≥ 3 seeds, mean ± std, a paired test with a verdict, report.md with a
bar chart and report.json) and one module per task, each reproducing a seed paper's
downstream table:

- denoise: Pang et al., HSIGene, arXiv:2409.12470, Table 8
- sr: Pang et al., HSIGene, arXiv:2409.12470, Table 9
- pixel-classify: Liu et al., HyperLDM, IEEE TGRS 61 (2023), Table VI
- segment: Liu et al., SpecDM, arXiv:2502.17056, Table 3(a)
- change: Liu et al., SpecDM, arXiv:2502.17056, Table 3(b)
- scene-classify: Pan et al., MSF-Diff, Information Fusion 108 (2024), Table 7
"""

from __future__ import annotations

from pathlib import Path

from .protocol import DownstreamConfig, Task

__all__ = ["DownstreamConfig", "Task", "run"]


def patch_task(name: str):
    from .change import ChangeDetect
    from .denoise import Denoise
    from .scene_classify import SceneClassify
    from .segment import Segment
    from .sr import SuperResolve

    tasks = {t.name: t for t in (Denoise, SuperResolve, Segment, ChangeDetect, SceneClassify)}
    return tasks[name]()


def run(real, synthetic: list[Path], out: Path, config: DownstreamConfig, overwrite: bool = False):
    """Run ``config.task``; returns the evaluation-report artifact. ``real``: one hsi-dataset, or
    several (paths and/or corpus YAML files: their union, ``corpus.py``)."""
    from ..common.errors import ConfigError
    from .corpus import open_real, refuse_single_dataset_options

    try:
        task = Task(config.task)
    except ValueError:
        raise ConfigError(f"--task {config.task!r}: choose one of {', '.join(t.value for t in Task)}") from None
    if config.scene_labels and task is not Task.scene_classify:
        raise ConfigError(f"--scene-labels is for --task scene-classify (not {task.value}); drop it")
    if config.backbone and task is not Task.segment:
        raise ConfigError(f"--backbone is for --task segment; leave it out for --task {task.value}")
    refuse_single_dataset_options(real, task.value, config.scene_labels)
    real = open_real(real)
    real = Path(real) if isinstance(real, (str, Path)) else real
    if task is Task.pixel_classify:
        from . import pixel_classify

        return pixel_classify.run(real, [Path(p) for p in synthetic], Path(out), config, overwrite)
    from .protocol import run_patch_task

    return run_patch_task(patch_task(task.value), real, [Path(p) for p in synthetic], Path(out), config, overwrite)
