"""Click groups used by the app: the root, which maps errors to exit codes and gives every
command the shared options and its examples, and one with a default subcommand so that
``hsigen unmix DATASET`` and ``hsigen unmix infer ...`` both work."""

from __future__ import annotations

import functools
import sys

import typer
from typer.core import TyperGroup

from .errors import exit_code_for
from .options import SHARED_NAMES, shared_options

# Exceptions that Typer itself turns into exit codes (usage errors → 2, Exit → its code).
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.TyperException)


EXAMPLE_PREFIXES = ("hsigen ", "torchrun ", "accelerate ")


def module_examples(command) -> str | None:
    """The ``hsigen ...`` example lines of the module that defines ``command``, as an
    epilog Click prints verbatim (a paragraph starting with ``\\b`` is not re-wrapped)."""
    callback = getattr(command, "callback", None)
    module = sys.modules.get(getattr(callback, "__module__", "") or "")
    doc = getattr(module, "__doc__", None) or ""
    # An example starts with the command's name (at any indentation: formatters re-indent
    # docstrings) and may go on over more-indented continuation lines.
    lines, base = [], None
    for line in doc.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith(EXAMPLE_PREFIXES):
            base = indent
            lines.append(line[indent:].rstrip())
        elif base is not None and stripped and indent > base:
            lines.append(line[base:].rstrip())
        else:
            base = None
    if not lines:
        return None
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def _holding_the_target_lock(callback):
    """Run a command holding the lock on its ``--out``: a second process writing the same target
    waits for this one, then finds its artifact up to date (or refuses to replace it)."""

    @functools.wraps(callback)
    def locked(*args, **kwargs):
        from stages.training.distributed import is_main_process

        out = kwargs.get("out")
        # Under torchrun every rank runs the command with one --out; only rank 0 writes it, and a
        # lock on the others would wait on rank 0 while rank 0 waits on them.
        if out is None or not is_main_process():
            return callback(*args, **kwargs)
        from stages.artifacts.store import target_lock

        with target_lock(out):
            return callback(*args, **kwargs)

    return locked


def prepare_command(command) -> None:
    """Add the shared options that ``command`` does not declare itself, the lock on its
    ``--out``, plain (Click) help formatting so examples keep their lines, and the module's
    examples as its epilog."""
    if hasattr(command, "commands"):  # a group
        for sub in command.commands.values():
            prepare_command(sub)
    command.rich_markup_mode = None
    # A plain group passes everything to its subcommands, which take the options.
    if not hasattr(command, "commands") or command.invoke_without_command:
        declared = {p.name for p in command.params}
        command.params.extend(p for p in shared_options() if p.name not in declared and p.name in SHARED_NAMES)
        if "out" in declared and command.callback is not None:
            command.callback = _holding_the_target_lock(command.callback)
    if not command.epilog:
        command.epilog = module_examples(command)


class HsigenGroup(TyperGroup):
    """Root group: every exception raised by a command passes through ``exit_code_for``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # `hsigen -v CMD` as well as `hsigen CMD -v`; --config belongs to each command.
        self.params.extend(p for p in shared_options() if p.name in ("verbose", "quiet"))
        for command in self.commands.values():
            prepare_command(command)

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
