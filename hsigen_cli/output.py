"""What commands print on stdout: results that the stages return as data."""

from __future__ import annotations

import json

import typer


def echo_dry_run(report: dict, as_json: bool) -> None:
    """A ``--dry-run`` report (``{"model", "preset", "parameters": {..., "total"}, facts...}``) as
    JSON, or as one line: ``MODEL (PRESET): TOTAL parameters (part N, ...); fact value, ...``."""
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    counts = report["parameters"]
    parts = ", ".join(f"{name} {count:,}" for name, count in counts.items() if name != "total")
    facts = ", ".join(
        f"{name.replace('_', ' ')} {value:,}" if isinstance(value, int) else f"{name.replace('_', ' ')} {value}"
        for name, value in report.items()
        if name not in ("model", "preset", "parameters")
    )
    typer.echo(
        f"{report['model']} ({report['preset']}): {counts['total']:,} parameters"
        + (f" ({parts})" if parts else "")
        + (f"; {facts}" if facts else "")
    )
