"""Messages print as written: user text in an error, warning or log line (a path with brackets, a
timestep range like 100:800) is neither rich markup nor an emoji code."""

from __future__ import annotations

import io

import pytest

from stages.common import log
from stages.common.errors import ConfigError

TEXT = "scene[b].tif, [bold]x[/bold], --guidance-interval -5:100: and :smile:"


@pytest.fixture
def captured(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(log.stderr, "file", buffer)  # the product's console, writing here
    return buffer


def test_error_line_is_verbatim(captured):
    from hsigen_cli.errors import exit_code_for

    assert exit_code_for(ConfigError(TEXT)) == 1
    assert captured.getvalue() == f"error: {TEXT}\n"


def test_internal_error_line_is_verbatim(captured):
    from hsigen_cli.errors import exit_code_for

    exit_code_for(ZeroDivisionError(TEXT))
    assert captured.getvalue().splitlines()[0] == f"internal error: ZeroDivisionError: {TEXT}"


def test_info_and_warning_are_verbatim(captured):
    log.info(TEXT)
    log.warn(TEXT)
    assert captured.getvalue() == f"{TEXT}\nwarning: {TEXT}\n"
