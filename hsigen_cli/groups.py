"""Click groups used by the app: one that maps errors to exit codes, and one with a default
subcommand so that ``hsigen unmix DATASET`` and ``hsigen unmix infer ...`` both work."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from .errors import exit_code_for

# Exceptions that Typer itself turns into exit codes (usage errors → 2, Exit → its code).
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.TyperException)


class HsigenGroup(TyperGroup):
    """Root group: every exception raised by a command passes through ``exit_code_for``."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except BaseException as exc:  # noqa: BLE001 - this is the single error boundary
            raise typer.Exit(exit_code_for(exc)) from None


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument, when it is not a subcommand name, goes to ``run``."""

    default_command = "run"

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        # `hsigen unmix DATASET ...` and `hsigen unmix --out x DATASET` both mean `unmix run ...`.
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)
