"""Messages print as written: user text in an error, warning or log line (a path with brackets, a
timestep range like 100:800) is neither rich markup nor an emoji code. The product's console writes
to whatever sys.stderr is at the time, so capsys sees exactly what a user would."""

from __future__ import annotations

from stages.common import log
from stages.common.errors import ConfigError

TEXT = "scene[b].tif, [bold]x[/bold], --guidance-interval -5:100: and :smile:"


def test_error_line_is_verbatim(capsys):
    from hsigen_cli.errors import exit_code_for

    assert exit_code_for(ConfigError(TEXT)) == 1
    assert capsys.readouterr().err == f"error: {TEXT}\n"


def test_internal_error_line_is_verbatim(capsys):
    from hsigen_cli.errors import exit_code_for

    exit_code_for(ZeroDivisionError(TEXT))
    assert capsys.readouterr().err.splitlines()[0] == f"internal error: ZeroDivisionError: {TEXT}"


def test_info_and_warning_are_verbatim(capsys):
    log.set_verbosity(0)
    log.info(TEXT)
    log.warn(TEXT)
    assert capsys.readouterr().err == f"{TEXT}\nwarning: {TEXT}\n"
