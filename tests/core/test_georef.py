"""rasterio's NotGeoreferencedWarning is silenced where hsigen writes (and reads back) rasters
without georeference on purpose, and only there."""

import warnings

import numpy as np
import pytest
from rasterio.errors import NotGeoreferencedWarning

from stages.common.georef import no_georeference


def test_ingest_and_sample_files_of_a_scene_without_georeference_warn_nothing(tmp_path):
    from stages.artifacts.labelled_samples import write_label_geotiff
    from stages.artifacts.samples import write_geotiff
    from stages.ingest import ingest_example

    with warnings.catch_warnings():
        warnings.simplefilter("error", NotGeoreferencedWarning)  # any such warning fails the test
        ingest_example(tmp_path / "ip")  # the embedded scene has no map coordinates
        write_geotiff(tmp_path / "s.tif", np.zeros((3, 4, 4), np.float32), [450.0, 550.0, 650.0])
        write_label_geotiff(tmp_path / "l.tif", np.zeros((4, 4), np.int64))
    assert (tmp_path / "ip" / "cube.tif").is_file() and (tmp_path / "l.tif").is_file()


def test_the_warning_is_not_silenced_elsewhere(tmp_path):
    import rasterio

    path = tmp_path / "x.tif"
    with no_georeference():
        with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32") as dst:
            dst.write(np.zeros((1, 4, 4), np.float32))
    with pytest.warns(NotGeoreferencedWarning):
        rasterio.open(path).close()  # outside the block: GDAL's warning stands
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotGeoreferencedWarning)
        with no_georeference(deliberate=False), pytest.raises(NotGeoreferencedWarning):
            rasterio.open(path).close()
