"""Rasters that hsigen writes without georeference on purpose.

Synthetic samples, their label maps and scenes whose source had no map coordinates have no
geotransform; GDAL then emits rasterio's ``NotGeoreferencedWarning``, which would only alarm a
user. ``no_georeference()`` silences it around those writes (and reads of them) and nowhere else.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def no_georeference(deliberate: bool = True) -> Iterator[None]:
    """Silence ``NotGeoreferencedWarning`` in this block when ``deliberate`` (the raster has no
    georeference by design); otherwise leave warnings as they are."""
    if not deliberate:
        yield
        return
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield
