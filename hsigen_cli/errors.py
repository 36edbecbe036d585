"""The one place where exceptions become messages and exit codes (docs/design.md §4).

0 ok · 1 user or data error (the message names the fix) · 2 usage error (Typer/Click)
· 3 internal error (a bug: the traceback is shown with -v).
"""

from __future__ import annotations

import traceback

from rich.markup import escape

from stages.common import log
from stages.common.errors import HsigenError

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _oserror(exc: OSError) -> str:
    where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"{exc.strerror or exc}{where}; check the path, permissions and free disk space"


# (exception type, exit code, message) — first match wins, so specific types come first.
ERROR_TABLE: list[tuple[type[BaseException], int, object]] = [
    (HsigenError, EXIT_USER, str),
    (MemoryError, EXIT_USER, lambda e: "out of memory; lower --batch-size, --size or --block-rows"),
    (KeyboardInterrupt, 130, lambda e: "interrupted; nothing was written (outputs are atomic)"),
    (FileNotFoundError, EXIT_USER, _oserror),
    (PermissionError, EXIT_USER, _oserror),
    (IsADirectoryError, EXIT_USER, _oserror),
    (OSError, EXIT_USER, _oserror),
]


def _torch_oom_types() -> tuple[type[BaseException], ...]:
    import sys

    torch = sys.modules.get("torch")  # only if a command already imported it
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch else None
    return (oom,) if oom else ()


def exit_code_for(exc: BaseException) -> int:
    """Print one clear line for ``exc`` on stderr and return its exit code."""
    if isinstance(exc, _torch_oom_types()):
        log.stderr.print(
            "[red]error:[/red] the GPU ran out of memory; lower --batch-size or use a smaller --preset", markup=True
        )
        return EXIT_USER
    for exc_type, code, message in ERROR_TABLE:
        if isinstance(exc, exc_type):
            text = message(exc) if callable(message) else str(message)
            log.stderr.print(f"[red]error:[/red] {escape(text)}", markup=True, highlight=False)
            if log.verbosity() >= 1:
                log.stderr.print(traceback.format_exc())
            return code
    log.stderr.print(
        f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))}", markup=True, highlight=False
    )
    if log.verbosity() >= 1:
        log.stderr.print(traceback.format_exc())
    else:
        log.stderr.print("This is a bug in hsigen; re-run with -v for the traceback and report it.")
    return EXIT_INTERNAL
