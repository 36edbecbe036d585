"""``hsigen pretrained``: the models shipped inside hsigen, with the metrics measured when they were trained.

hsigen pretrained                        # name, kind, size, what it is, its metrics
hsigen pretrained --json                 # the same as data (provenance included)
hsigen pretrained --verify               # also recompute every file's sha256
hsigen inspect pretrained:indian-pines-latent   # one model's manifest
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .options import Json


def _metric_text(metrics: dict) -> str:
    """``spr 0.79, srec 0.098, …``; a model scored several ways (a latent model with and without
    conditions) gets one group per way."""
    keep = ("spr", "srec", "gradient_ratio", "max_band_mean_error")
    groups = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    if groups:
        return "; ".join(f"{name}: {_metric_text(values)}" for name, values in groups.items())
    return ", ".join(f"{k} {metrics[k]:.3g}" for k in keep if isinstance(metrics.get(k), (int, float)))


def pretrained(
    as_json: Json = False,
    verify: Annotated[bool, typer.Option("--verify", help="Recompute every file's sha256 against index.json.")] = False,
):
    """List the pretrained models that `--ckpt pretrained:NAME` (and every other model option) accepts."""
    from stages import pretrained as registry

    models = registry.available()
    if verify:
        for model in models:
            registry.verify(model)
    if as_json:
        rows = [
            {
                "name": m.name,
                "reference": m.reference,
                "kind": m.kind,
                "description": m.description,
                "bytes": m.bytes,
                "spectral_manifold": m.spectral_manifold_reference,
                "provenance": m.provenance(),
            }
            for m in models
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not models:
        typer.echo("no pretrained models are installed; `make pretrained` trains and installs them")
        return
    lines = []
    for m in models:
        prov = m.provenance()
        lines.append(f"{m.reference:<36} {m.kind:<16} {m.bytes / 1e6:6.2f} MB  {m.description}")
        detail = _metric_text(prov.get("metrics", {}))
        if prov.get("steps") is not None:
            detail = f"{prov['steps']} steps, {prov.get('wall_seconds', 0):.0f} s" + (f"; {detail}" if detail else "")
        if detail:
            lines.append(f"{'':<36} {detail}")
        if m.spectral_manifold_reference:
            lines.append(
                f"{'':<36} samples decode through {m.spectral_manifold_reference} by default "
                "(--spectral-manifold none: raw; the metrics above are the raw samples', the manifold's are through it)"
            )
    total = sum(m.bytes for m in models)
    lines.append(f"{len(models)} models, {total / 1e6:.1f} MB" + ("; every file matches its sha256" if verify else ""))
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("pretrained")(pretrained)
