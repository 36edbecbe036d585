"""Scene readers: every format becomes a ``Scene`` that yields physical-unit row blocks.

A reader never loads more than it is asked for where the format allows it (ENVI and
GeoTIFF are read by row windows; ``.npy`` is memory-mapped), so ``ingest`` runs in bounded
memory on scenes larger than RAM.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import InputError
from ..common.georef import no_georeference
from .scene import Scene


def open_scene(path: str | Path, var: str | None = None) -> Scene:
    """Dispatch on the file name; a ``.hdr`` or its data file both open ENVI."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist; check the path")
    if path.is_dir():
        raise InputError(f"input {path} is a directory; give the scene file itself (e.g. the ENVI .hdr)")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return _open_mat(path, var)
    if suffix == ".npy":
        return _open_npy(path)
    if suffix in (".tif", ".tiff"):
        from .geotiff import open_geotiff

        return open_geotiff(path)
    from .envi import DATA_EXTENSIONS, find_envi_header, open_envi

    header = find_envi_header(path)
    if header is not None:
        return open_envi(header, data_path=None if suffix == ".hdr" else path)
    if suffix == ".hdr":
        raise InputError(f"{path}: the ENVI header cannot be read; check the path")
    if suffix in DATA_EXTENSIONS:
        raise InputError(
            f"{path}: no ENVI header found beside it (looked for {path.name}.hdr"
            f"{' and ' + path.with_suffix('.hdr').name if suffix else ''}); ENVI data needs its .hdr text header "
            "in the same folder"
        )
    raise InputError(
        f"{path}: unknown format {suffix or '(no extension)'}; hsigen reads ENVI (.hdr + data), GeoTIFF, "
        "MATLAB .mat (v5 and v7.3) and .npy (H, W, B)"
    )


def _from_array(path: Path, array, fmt: str, transpose_hwb=None) -> Scene:
    if array.ndim != 3:
        raise InputError(f"{path}: expected a 3-D (H, W, B) array, got shape {tuple(array.shape)}")
    h, w, b = array.shape

    def read(r0: int, r1: int) -> np.ndarray:
        return np.asarray(array[r0:r1])

    return Scene(path=path, height=h, width=w, bands=b, _read=read, format=fmt)


def _open_npy(path: Path) -> Scene:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{path}: not a plain numeric .npy array ({exc}); save it with numpy.save") from exc
    return _from_array(path, array, "npy")


def _pick_variable(path: Path, shapes: dict[str, tuple], var: str | None) -> str:
    if var is not None:
        if var not in shapes:
            raise InputError(f"{path}: no variable {var!r}; it holds {', '.join(sorted(shapes)) or 'nothing'}")
        if len(shapes[var]) != 3:
            raise InputError(f"{path}: variable {var!r} has shape {shapes[var]}, not a 3-D (H, W, B) cube")
        return var
    cubes = [k for k, s in shapes.items() if len(s) == 3]
    if not cubes:
        raise InputError(f"{path}: no 3-D array inside (variables: {', '.join(sorted(shapes)) or 'none'})")
    if len(cubes) > 1:
        raise InputError(f"{path}: several 3-D variables ({', '.join(sorted(cubes))}); choose one with --var")
    return cubes[0]


def _open_mat(path: Path, var: str | None) -> Scene:
    import h5py

    if h5py.is_hdf5(path):
        # MATLAB v7.3 is HDF5 with every array stored transposed: a MATLAB (H, W, B) cube is
        # an HDF5 dataset of shape (B, W, H).
        f = h5py.File(path, "r")
        shapes = {k: tuple(reversed(v.shape)) for k, v in f.items() if isinstance(v, h5py.Dataset)}
        name = _pick_variable(path, shapes, var)
        dataset = f[name]
        h, w, b = shapes[name]

        def read(r0: int, r1: int) -> np.ndarray:
            return np.transpose(dataset[:, :, r0:r1], (2, 1, 0))

        return Scene(path=path, height=h, width=w, bands=b, _read=read, format="mat-v7.3", notes={"variable": name})
    import scipy.io

    try:
        shapes = {k: tuple(s) for k, s, _ in scipy.io.whosmat(str(path))}
    except Exception as exc:  # scipy raises several types for non-MAT files
        raise InputError(
            f"{path}: not a readable MATLAB file ({exc}); save it with MATLAB or scipy.io.savemat"
        ) from exc
    name = _pick_variable(path, shapes, var)
    array = scipy.io.loadmat(str(path), variable_names=[name])[name]
    scene = _from_array(path, array, "mat-v5")
    scene.notes["variable"] = name
    return scene


def read_label_map(path: str | Path, var: str | None = None) -> np.ndarray:
    """A 2-D integer label map from .mat / .npy / GeoTIFF / ERDAS .GIS."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"label map {path} does not exist; check --labels")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        labels = np.load(path, allow_pickle=False)
    elif suffix == ".mat":
        import h5py
        import scipy.io

        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                names = [k for k, v in f.items() if isinstance(v, h5py.Dataset) and v.ndim == 2]
                name = var or (names[0] if len(names) == 1 else None)
                if name is None or name not in names:
                    raise InputError(
                        f"{path}: cannot tell which 2-D variable holds labels "
                        f"({', '.join(names) or 'none'}); use --labels-var"
                    )
                labels = np.asarray(f[name]).T
        else:
            try:
                shapes = {k: tuple(s) for k, s, _ in scipy.io.whosmat(str(path))}
            except Exception as exc:  # scipy raises several types for non-MAT files
                raise InputError(
                    f"label map {path}: not a readable MATLAB file ({exc}); save it with MATLAB or scipy.io.savemat"
                ) from exc
            names = [k for k, s in shapes.items() if len(s) == 2]
            name = var or (names[0] if len(names) == 1 else None)
            if name is None or name not in names:
                raise InputError(
                    f"{path}: cannot tell which 2-D variable holds labels "
                    f"({', '.join(names) or 'none'}); use --labels-var"
                )
            labels = scipy.io.loadmat(str(path), variable_names=[name])[name]
    elif suffix in (".tif", ".tiff"):
        import rasterio

        with no_georeference(), rasterio.open(path) as src:
            labels = src.read(1)
    elif suffix == ".gis":
        from .erdas import read_erdas_gis

        labels = read_erdas_gis(path)
    else:
        raise InputError(f"label map {path}: unknown format; use .mat, .npy, GeoTIFF or ERDAS .GIS")
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"label map {path} has shape {labels.shape}; it must be 2-D (H, W)")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise InputError(f"label map {path} holds non-integer values; labels must be integer class ids")
    return labels.astype(np.int64)
