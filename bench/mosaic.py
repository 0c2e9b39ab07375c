"""Mosaic engine benchmark: tessera against metapixel on the same work, in one run (see README, Benchmarks).

    .venv/bin/python bench/mosaic.py --data /tmp/bench-data [--workloads W1 W2] [--repeats 3]

Needs ../shared/bench-data's targets and tile sets (tiles-10000 for W2: see its README) and
Debian's metapixel. Every timing is the whole command (process start to exit), median of
--repeats; CPU is user+system of the process and its children; RSS is the peak.
Quality: mosaic and target both box-downsampled to 4 samples per cell side, then SSIM (RGB,
scikit-image) and mean CIEDE2000.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

ROOT = Path(__file__).resolve().parent.parent
TESSERA = [str(ROOT / ".venv" / "bin" / "tessera")]
WORKLOADS = {"W1": ("tiles-1000", 64), "W2": ("tiles-10000", 128)}
PX, TARGET_PX, SAMPLES = 32, 512, 4


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    stdout: str = ""


@dataclass
class Row:
    name: str
    runs: list[Run] = field(default_factory=list)
    ssim: float | None = None
    delta_e: float | None = None
    distinct: int | None = None
    max_reuse: int | None = None

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out)


def quality(mosaic_path: Path, target_path: Path, cells: int) -> tuple[float, float]:
    side = cells * SAMPLES
    a = np.asarray(Image.open(mosaic_path).convert("RGB").resize((side, side), Image.Resampling.BOX))
    b = np.asarray(Image.open(target_path).convert("RGB").resize((side, side), Image.Resampling.BOX))
    ssim = structural_similarity(a, b, channel_axis=-1, data_range=255)
    delta_e = deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean()
    return float(ssim), float(delta_e)


def reuse_from_protocol(path: Path) -> tuple[int, int]:
    counts = Counter(re.findall(r'"([^"]+)"\)', path.read_text()))
    return len(counts), max(counts.values())


def reuse_from_tessera(stdout: str) -> tuple[int, int]:
    match = re.search(r"(\d+) distinct, max reuse (\d+)", stdout)
    if not match:
        raise SystemExit(f"cannot read tessera's summary: {stdout!r}")
    return int(match.group(1)), int(match.group(2))


def repeat(row: Row, times: int, cmd: list[str], env: dict[str, str] | None = None) -> Run:
    for _ in range(times):
        row.runs.append(measure(cmd, env))
    return row.runs[-1]


def tessera_cmd(target: Path, tiles: Path, out: Path, cells: int, *extra: str) -> list[str]:
    return [*TESSERA, "build", str(target), "--tiles", str(tiles), "-o", str(out), "--grid", f"{cells}x{cells}",
            "--tile-px", str(PX), *extra]


def bench_target(work: Path, name: str, target: Path, tiles: Path, lib: Path, cells: int, repeats: int,
                 env: dict[str, str]) -> list[Row]:
    scale = str(cells * PX // TARGET_PX)
    cache = work / f"cache-{name}"
    rows = []
    mp = Row("metapixel build (-d 5)")
    mp_out, proto = work / f"{name}-{target.stem}-mp.jpg", work / f"{name}-{target.stem}-mp.txt"
    repeat(mp, repeats, ["metapixel", "-l", str(lib), "-w", str(PX), "-h", str(PX), "-s", scale, f"--out={proto}",
                         "--metapixel", str(target), str(mp_out)])
    mp.ssim, mp.delta_e = quality(mp_out, target, cells)
    mp.distinct, mp.max_reuse = reuse_from_protocol(proto)
    rows.append(mp)
    mp0 = Row("metapixel build -d 0")
    mp0_out, proto0 = work / f"{name}-{target.stem}-mp0.jpg", work / f"{name}-{target.stem}-mp0.txt"
    repeat(mp0, 1, ["metapixel", "-l", str(lib), "-w", str(PX), "-h", str(PX), "-s", scale, "-d", "0",
                    f"--out={proto0}", "--metapixel", str(target), str(mp0_out)])
    mp0.ssim, mp0.delta_e = quality(mp0_out, target, cells)
    mp0.distinct, mp0.max_reuse = reuse_from_protocol(proto0)
    rows.append(mp0)
    for label, extra in (("defaults", ()), ("--min-distance 5", ("--min-distance", "5")),
                         ("--min-distance 5 --blend 0", ("--min-distance", "5", "--blend", "0"))):
        out = work / f"{name}-{target.stem}-tessera-{len(rows)}.jpg"
        cold = Row(f"tessera cold, {label}")
        last = repeat(cold, repeats, tessera_cmd(target, tiles, out, cells, "--no-cache", *extra), env)
        cold.ssim, cold.delta_e = quality(out, target, cells)
        cold.distinct, cold.max_reuse = reuse_from_tessera(last.stdout)
        measure(tessera_cmd(target, tiles, out, cells, "--cache", str(cache), *extra), env)  # fill the cache
        warm = Row(f"tessera warm, {label}")
        last = repeat(warm, repeats, tessera_cmd(target, tiles, out, cells, "--cache", str(cache), *extra), env)
        warm.ssim, warm.delta_e, warm.distinct, warm.max_reuse = cold.ssim, cold.delta_e, cold.distinct, cold.max_reuse
        rows += [cold, warm]
    return rows


def in_worker(target: Path, tiles: Path, cache: Path, cells: int, repeats: int, memo: bool) -> list[dict[str, object]]:
    """Warm builds through build_mosaic in one warmed-up process, as a worker runs them; their details.

    ``memo``: the worker's in-memory tile sets on (the second build on finds the set there) or off (each build
    reads and hashes every tile to find it in the node's tile cache). The process is prepared first, as
    `tessera worker`'s does (workers/cli/startup.py, before NumPy loads)."""
    code = (
        "import json, sys, dataclasses, time; from workers.cli.startup import prepare_kernels, prepare_process; "
        "prepare_process(); prepare_kernels(); "
        "import config, kernels; "
        "from workers.cli.build import LocalSource, tile_refs; from workers.inputs.fetch import Fetcher; "
        "from workers.protocol.options import Options; "
        "from workers.protocol.package import JobPackage; from workers.pipeline.mosaic import build_mosaic\n"
        "t, tiles, cache, cells, n, memo = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), "
        "int(sys.argv[5]), int(sys.argv[6])\n"
        "s = config.load(None); s = dataclasses.replace(s, limits=dataclasses.replace(s.limits, max_tiles=10**6), "
        "mosaic=dataclasses.replace(s.mosaic, tile_cache=cache, tile_memo_mb=memo)); kernels.warm_up()\n"
        "refs = tile_refs(tiles); pkg = JobPackage.create(t, refs, Options(cells, cells, 32, 0))\n"
        "for _ in range(n + 1):  # the first fills the memo when it is on\n"
        "    t0 = time.perf_counter(); d = build_mosaic(pkg, LocalSource(Fetcher(s.fetch), refs), s).details\n"
        "    d['total'] = round(time.perf_counter() - t0, 4); print(json.dumps(d))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(target), str(tiles), str(cache), str(cells), str(repeats),
                          "128" if memo else "0"], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")][1:]


def print_table(title: str, rows: list[Row], mp_prepare: Run) -> None:
    mp = rows[0]
    mp_total = mp_prepare.wall + mp.median("wall")
    print(f"\n### {title}\n")
    print("| run | wall s | CPU s | peak RSS MB | SSIM | ΔE2000 | distinct | max reuse | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    print(f"| metapixel prepare | {mp_prepare.wall:.2f} | {mp_prepare.cpu:.2f} | {mp_prepare.rss_mb:.0f} "
          "| | | | | |")
    for row in rows:
        wall = row.median("wall")
        if row.name.startswith("tessera cold"):
            ratio = f"{mp_total / wall:.1f}× vs mp prepare+build"
        elif row.name.startswith("tessera warm"):
            ratio = f"{mp.median('wall') / wall:.1f}× vs mp build"
        else:
            ratio = ""
        print(f"| {row.name} | {wall:.2f} | {row.median('cpu'):.2f} | {row.median('rss_mb'):.0f} | {row.ssim:.3f} "
              f"| {row.delta_e:.2f} | {row.distinct} | {row.max_reuse} | {ratio} |")
    by = {row.name: row for row in rows}
    eq, ours = by["tessera cold, --min-distance 5"], by["tessera cold, defaults"]
    assert mp.ssim is not None and mp.delta_e is not None and eq.ssim is not None and eq.delta_e is not None
    assert ours.ssim is not None
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"equal terms (-d 5, default blend): SSIM {eq.ssim - mp.ssim:+.3f} vs metapixel (aim ≥ +0.07), "
          f"ΔE ratio {eq.delta_e / mp.delta_e:.2f} (aim ≤ 0.80); defaults: SSIM {ours.ssim - mp.ssim:+.3f} "
          f"(aim ≥ +0.13), max reuse {ours.max_reuse} vs metapixel's {mp.max_reuse} (aim ≤)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-data"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/tessera-bench"))
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--targets", nargs="*", default=None, help="target stems (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(ROOT / "var" / "numba-cache")}
    measure([*TESSERA, "build", "--help"], env)
    targets = sorted((args.data / "targets").glob("*.png"))
    targets = [t for t in targets if args.targets is None or t.stem in args.targets]
    for name in args.workloads:
        folder, cells = WORKLOADS[name]
        tiles, lib = args.data / folder, args.work / f"mplib-{name}"
        lib.mkdir()
        prepare = measure(["metapixel-prepare", f"--width={PX}", f"--height={PX}", str(tiles), str(lib)])
        for target in targets:
            rows = bench_target(args.work, name, target, tiles, lib, cells, args.repeats, env)
            print_table(f"{name}: {tiles.name}, {cells}x{cells} cells of {PX} px, target {target.stem}", rows, prepare)
            if name == "W2":
                for memo in (False, True):
                    runs = in_worker(target, tiles, args.work / f"cache-{name}", cells, args.repeats, memo)
                    totals = [r["total"] for r in runs]
                    print(f"in a warmed-up worker process (warm tile cache, memo {'on' if memo else 'off'}, "
                          f"defaults): build_mosaic median {statistics.median(totals):.3f} s; "
                          f"timings of the last: {runs[-1]['timings']}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
