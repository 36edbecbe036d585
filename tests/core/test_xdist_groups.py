"""`make test` keeps every area's tests on one pytest-xdist worker (tests/conftest.py), so the
session fixtures an area trains are built once; this checks that the grouping took effect."""

from __future__ import annotations

import os

import pytest


def test_this_area_is_one_xdist_group(request):
    if "PYTEST_XDIST_WORKER" not in os.environ or not getattr(request.config.option, "loadgroup", False):
        pytest.skip("checks `pytest -n N --dist loadgroup` (make test); this run has no xdist groups")
    # pytest-xdist schedules by the "@group" suffix it adds to the node id; without it (pytest 9.2
    # with xdist 3.8) the area's tests spread over every worker.
    assert request.node.nodeid.endswith("@core"), request.node.nodeid
