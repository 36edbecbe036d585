"""Streaming ingest of a multi-GB ENVI scene: throughput and peak memory, in one run.

    .venv/bin/python benchmarks/ingest.py                 # ~2.4 GB int16 BIL, 224 bands
    .venv/bin/python benchmarks/ingest.py --gb 1 --keep   # smaller; keep the temp folder

Writes a synthetic AVIRIS-like scene (224 bands, 400-2500 nm, int16, BIL) block by block into
a temporary folder, then measures side by side
- a plain sequential ``numpy.memmap`` read of the same file (the I/O floor), and
- ``hsigen ingest`` of it in a child process (wall time, and the child's peak RSS: VmHWM
  from its own /proc/self/status at exit),
and prints ingest throughput (MB/s of input) as a ratio to the memmap read, and peak RSS
against the 1 GiB target. The folder is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BANDS = 224
WIDTH = 2048


def write_scene(folder: Path, gigabytes: float) -> tuple[Path, Path, int]:
    """A BIL int16 scene written 64 rows at a time (never held whole)."""
    height = int(gigabytes * 1e9 / (WIDTH * BANDS * 2))
    height -= height % 64
    wl = np.linspace(400.0, 2500.0, BANDS)
    data, hdr = folder / "scene.bil", folder / "scene.hdr"
    hdr.write_text(
        "ENVI\ndescription = {hsigen benchmark scene}\n"
        f"samples = {WIDTH}\nlines = {height}\nbands = {BANDS}\nheader offset = 0\n"
        "file type = ENVI Standard\ndata type = 2\ninterleave = bil\nbyte order = 0\n"
        "data ignore value = -9999\nreflectance scale factor = 10000\nwavelength units = Nanometers\n"
        "wavelength = {" + ", ".join(f"{w:.2f}" for w in wl) + "}\n"
    )
    rng = np.random.default_rng(0)
    spectrum = (3000 + 2000 * np.sin(np.linspace(0, 6, BANDS)))[None, :, None]  # (1, B, 1)
    cols = np.linspace(0.5, 1.5, WIDTH)[None, None, :]
    with open(data, "wb") as f:
        for r0 in range(0, height, 64):
            rows = (1.0 + 0.3 * np.sin((r0 + np.arange(64)) / 50.0))[:, None, None]
            block = spectrum * cols * rows + rng.normal(0, 30, (64, 1, WIDTH))
            f.write(block.astype("<i2").tobytes())
    return hdr, data, height


def memmap_read_seconds(data: Path, height: int) -> tuple[float, float]:
    """(wall, CPU) seconds of a plain sequential numpy.memmap read, 256 rows at a time."""
    start, cpu = time.perf_counter(), time.process_time()
    mm = np.memmap(data, dtype="<i2", mode="r", shape=(height, BANDS, WIDTH))
    checksum = 0
    for r0 in range(0, height, 256):
        checksum += int(np.array(mm[r0 : r0 + 256])[:, 0, 0].sum())  # copy every byte of the block
    del mm
    return time.perf_counter() - start, time.process_time() - cpu


# The child records its own high-water RSS at exit. (``wait4``'s ru_maxrss is no good here:
# on exec Linux carries the pre-exec address space's peak into it, i.e. this parent's peak,
# which includes every page the memmap baseline touched.)
CHILD = """
import atexit, sys
report = sys.argv[1]
def hwm():
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    with open(report, "w") as out:
        out.write(str(kb))
atexit.register(hwm)
sys.argv = ["hsigen"] + sys.argv[2:]
from hsigen_cli.app import main
main()
"""


def ingest_child(hdr: Path, out: Path, extra: list[str]) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MiB, exit code) of ``hsigen ingest`` in a child process."""
    report = out.parent / "peak_rss_kb.txt"
    cmd = [sys.executable, "-c", CHILD, str(report), "ingest", str(hdr), "--out", str(out), "-q", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL).returncode
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_kb = int(report.read_text()) if report.is_file() else float("nan")
    return seconds, cpu, peak_kb / 1024.0, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=2.4, help="input size in GB (default 2.4)")
    parser.add_argument("--tmp", default="/tmp", help="parent of the temporary folder (needs ~3.5x --gb free)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "ingest_args",
        nargs="*",
        default=["--size", "256", "--stride", "256"],
        help="extra ingest options (default: --size 256 --stride 256)",
    )
    args = parser.parse_args()

    free = shutil.disk_usage(args.tmp).free / 1e9
    if free < 3.5 * args.gb:
        sys.exit(f"only {free:.1f} GB free under {args.tmp}; need about {3.5 * args.gb:.1f} GB (lower --gb)")
    folder = Path(tempfile.mkdtemp(prefix="hsigen-bench-ingest-", dir=args.tmp))
    try:
        t0 = time.perf_counter()
        hdr, data, height = write_scene(folder, args.gb)
        size_mb = data.stat().st_size / 1e6
        print(
            f"scene: {height} x {WIDTH} x {BANDS} int16 BIL, {size_mb:.0f} MB "
            f"(written in {time.perf_counter() - t0:.1f} s)"
        )
        base_s, base_cpu = memmap_read_seconds(data, height)
        ingest_s, ingest_cpu, peak_mib, code = ingest_child(hdr, folder / "dataset", args.ingest_args)
        if code != 0:
            sys.exit(f"ingest failed with exit code {code}")
        print(
            f"numpy.memmap sequential read : wall {base_s:7.2f} s ({size_mb / base_s:7.1f} MB/s)  "
            f"CPU {base_cpu:7.2f} s ({size_mb / base_cpu:7.1f} MB/s)"
        )
        print(
            f"hsigen ingest {' '.join(args.ingest_args)}: wall {ingest_s:7.2f} s ({size_mb / ingest_s:7.1f} MB/s)  "
            f"CPU {ingest_cpu:7.2f} s ({size_mb / ingest_cpu:7.1f} MB/s)"
        )
        print(
            f"throughput ratio ingest / memmap read: wall {base_s / ingest_s:.3f}, CPU {base_cpu / ingest_cpu:.3f} "
            f"(os.getloadavg: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
        )
        verdict = "within" if peak_mib <= 1024 else "ABOVE"
        print(
            f"ingest peak RSS: {peak_mib:.0f} MiB ({verdict} the 1024 MiB target; input is "
            f"{size_mb / 1.048576:.0f} MiB)"
        )
        outputs = {p.name: p.stat().st_size / 1e6 for p in (folder / "dataset").iterdir()}
        print("outputs: " + ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(outputs.items())))
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
