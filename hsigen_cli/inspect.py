"""``hsigen inspect DIR``: print an artifact's manifest.

hsigen inspect runs/ip                 # a short summary
hsigen inspect runs/ip --json          # the whole manifest on stdout
hsigen inspect runs/ip --verify        # also recompute every output's sha256
hsigen inspect pretrained:indian-pines-latent   # a shipped model (hsigen pretrained lists them)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import Json


def inspect_artifact(
    directory: Annotated[Path, typer.Argument(help="An artifact directory, or pretrained:NAME.")],
    as_json: Json = False,
    verify: Annotated[bool, typer.Option("--verify", help="Recompute output hashes.")] = False,
):
    """Print an artifact's manifest (kind, config, inputs, outputs, metrics)."""
    from stages.artifacts import open_artifact
    from stages.common.errors import ArtifactError

    artifact = open_artifact(directory)
    if verify:
        bad = artifact.verify()
        if bad:
            raise ArtifactError(f"{directory}: {', '.join(bad)} changed since they were written; rebuild the artifact")
    m = artifact.manifest
    if as_json:
        typer.echo(json.dumps(m, indent=2))
        return
    lines = [f"{m['kind']} v{m['schema_version']}  (stage {m['stage']}, hsigen {m['hsigen_version']}, {m['created']})"]
    if "spectral" in m:
        wl = m["spectral"]["wavelengths_nm"]
        lines.append(
            f"spectral: {m['spectral']['band_count']} bands {wl[0]:.1f}-{wl[-1]:.1f} nm, "
            f"physical = stored * {m['spectral']['scale']:.6g} + {m['spectral']['offset']:.6g}"
        )
    for rec in m["inputs"]:
        lines.append(f"input:  {rec['kind']:<18} {rec['path']}  {rec['sha256'][:12]}")
    for rec in m["outputs"]:
        lines.append(f"output: {rec['path']:<28} {rec['bytes']:>12,d} B  {rec['sha256'][:12]}")
    for key, value in m.get("metrics", {}).items():
        lines.append(f"metric: {key} = {value}")
    if verify:
        lines.append("verify: every output matches its sha256")
    if str(directory).startswith("pretrained:"):
        lines.append(f"pretrained: {artifact.path} (read-only; every file verified against its shipped sha256)")
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_artifact)
