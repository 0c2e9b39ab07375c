"""Mosaic engine benchmark: tessera against metapixel on the same work, in one run (see README, Benchmarks).

    .venv/bin/python bench/mosaic.py --data /tmp/bench-data [--workloads W1 W2] [--repeats 3]

Needs ../shared/bench-data's targets and tile sets (tiles-10000 for W2: see its README) and
Debian's metapixel. Every timing is the whole command (process start to exit), median of
--repeats; CPU is user+system of the process and its children; RSS is the peak.
Quality: mosaic and target both box-downsampled to 4 samples per cell side, then SSIM (RGB,
scikit-image) and mean CIEDE2000. Tile fidelity: how far colour correction moved the placed tiles from
themselves (mean CIEDE2000, tessera's own figure; metapixel's classic mode corrects nothing: 0).
Largest reuse per file, and per visible picture: files whose 8x8 thumbnails lie within NEAR_RMS of each
other merged (computed here from the files, independent of either engine; tessera's placements from its
tile map, in one process per target).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
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
THUMB = 8
"""Thumbnail side for finding near-duplicate tiles."""
NEAR_RMS = 4.0
"""Two tiles whose 8x8 thumbnails differ by at most this RMS (0-255) count as one visible picture."""
Config = tuple[str, tuple[str, ...]]
"""A row's label and its extra `tessera build` flags."""
CONFIGS: tuple[Config, ...] = (
    ("defaults", ()), ("--blend 0", ("--blend", "0")), ("--min-distance 5", ("--min-distance", "5")),
    ("--blend 0 --min-distance 5", ("--blend", "0", "--min-distance", "5")),
    ("--blend 0 --min-distance 5 --max-uses 0, metapixel's terms",
     ("--blend", "0", "--min-distance", "5", "--max-uses", "0")),
    ("metapixel's terms, flat pictures spaced too", ("--blend", "0", "--min-distance", "5", "--max-uses", "0",
                                                      "--space-flat")),
    ("metapixel's exact rule: every file spaced", ("--blend", "0", "--min-distance", "5", "--max-uses", "0",
                                                   "--space-flat", "--count-by-file")))
"""The last three: metapixel's own rules, the distance rule and no use cap (our default cap binds where it has
none); then flat pictures spaced out too, as metapixel's rule does every tile; then the rule counted per file, not
per picture (near-duplicates are one picture for us, a file each for metapixel): metapixel's rule exactly."""
NO_REFINE: tuple[Config, ...] = (
    ("--no-refine (new assignment off)", ("--no-refine",)),
    ("--blend 0 --min-distance 5 --no-refine", ("--blend", "0", "--min-distance", "5", "--no-refine")))
"""Run when `tessera build --help` offers the flag (defaults are the new assignment on)."""


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
    fidelity: float | None = None
    reuse_picture: int | None = None
    """Largest reuse with near-duplicate files merged into one picture."""

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


def uses_from_protocol(path: Path) -> Counter[str]:
    """Cells per tile file (base name, as in the tile folder) in metapixel's protocol. Its library holds each
    file as ``<name>.png`` (metapixel-prepare's copy): the suffix goes, or no file would find its picture."""
    return Counter(Path(name).name.removesuffix(".png") for name in re.findall(r'"([^"]+)"\)', path.read_text()))


def summary_from_tessera(stdout: str) -> tuple[int, int, float]:
    """Distinct tiles, largest reuse and tile fidelity from `tessera build`'s summary line."""
    match = re.search(r"(\d+) distinct, max reuse (\d+), .*tile fidelity ΔE ([\d.]+)", stdout)
    if not match:
        raise SystemExit(f"cannot read tessera's summary: {stdout!r}")
    return int(match.group(1)), int(match.group(2)), float(match.group(3))


def picture_groups(tiles: Path) -> dict[str, int]:
    """Base name of each tile file → its visible picture: files whose 8x8 thumbnails (box filter) differ by at
    most NEAR_RMS are merged, transitively (union-find over all pairs, in blocks)."""
    names = sorted(p.name for p in tiles.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    thumbs = np.empty((len(names), THUMB * THUMB * 3), dtype=np.float32)
    for i, name in enumerate(names):
        with Image.open(tiles / name) as img:
            img.draft("RGB", (THUMB * 4, THUMB * 4))
            thumbs[i] = np.asarray(img.convert("RGB").resize((THUMB, THUMB), Image.Resampling.BOX)).ravel()
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    norms = (thumbs.astype(np.float64) ** 2).sum(1)
    limit = NEAR_RMS**2 * thumbs.shape[1]
    for start in range(0, len(names), 1024):
        block = thumbs[start : start + 1024].astype(np.float64)
        d2 = norms[start : start + 1024, None] + norms[None, :] - 2.0 * block @ thumbs.T.astype(np.float64)
        for i, j in zip(*np.nonzero(d2 <= limit), strict=True):
            a, b = root(start + int(i)), root(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {name: root(i) for i, name in enumerate(names)}


def largest(uses: Counter[str], groups: dict[str, int]) -> tuple[int, int]:
    """Largest reuse per file and per visible picture."""
    pictures: Counter[int | str] = Counter()
    for name, count in uses.items():
        pictures[groups.get(name, name)] += count
    return max(uses.values()), max(pictures.values())


def repeat(row: Row, times: int, cmd: list[str], env: dict[str, str] | None = None) -> Run:
    for _ in range(times):
        row.runs.append(measure(cmd, env))
    return row.runs[-1]


def tessera_cmd(target: Path, tiles: Path, out: Path, cells: int, *extra: str) -> list[str]:
    return [*TESSERA, "build", str(target), "--tiles", str(tiles), "-o", str(out), "--grid", f"{cells}x{cells}",
            "--tile-px", str(PX), *extra]


def metapixel_row(label: str, work: Path, stem: str, target: Path, lib: Path, cells: int, times: int,
                  groups: dict[str, int], *extra: str) -> Row:
    row = Row(label)
    out, proto = work / f"{stem}-mp{len(extra)}.jpg", work / f"{stem}-mp{len(extra)}.txt"
    repeat(row, times, ["metapixel", "-l", str(lib), "-w", str(PX), "-h", str(PX), "-s", str(cells * PX // TARGET_PX),
                        *extra, f"--out={proto}", "--metapixel", str(target), str(out)])
    row.ssim, row.delta_e = quality(out, target, cells)
    uses = uses_from_protocol(proto)
    row.distinct, row.fidelity = len(uses), 0.0
    row.max_reuse, row.reuse_picture = largest(uses, groups)
    return row


def bench_target(work: Path, name: str, target: Path, tiles: Path, lib: Path, cells: int, repeats: int,
                 configs: tuple[Config, ...], groups: dict[str, int]) -> list[Row]:
    cache, stem = work / f"cache-{name}", f"{name}-{target.stem}"
    rows = [metapixel_row("metapixel build (-d 5)", work, stem, target, lib, cells, repeats, groups),
            metapixel_row("metapixel build -d 0", work, stem, target, lib, cells, 1, groups, "-d", "0")]
    placed = placements(target, tiles, work / f"placements-{name}", cells, configs)
    for label, extra in configs:
        out = work / f"{stem}-tessera-{len(rows)}.jpg"
        cold = Row(f"tessera cold, {label}")
        last = repeat(cold, repeats, tessera_cmd(target, tiles, out, cells, "--no-cache", *extra))
        cold.ssim, cold.delta_e = quality(out, target, cells)
        cold.distinct, cold.max_reuse, cold.fidelity = summary_from_tessera(last.stdout)
        per_file, cold.reuse_picture = largest(placed[label], groups)
        if per_file != cold.max_reuse:  # the in-process build placed tiles differently from the command's
            print(f"warning: {label}: the tile map's largest reuse {per_file} is not the command's {cold.max_reuse}",
                  file=sys.stderr)
        measure(tessera_cmd(target, tiles, out, cells, "--cache", str(cache), *extra))  # fill the cache
        warm = Row(f"tessera warm, {label}")
        repeat(warm, repeats, tessera_cmd(target, tiles, out, cells, "--cache", str(cache), *extra))
        warm.ssim, warm.delta_e, warm.distinct, warm.max_reuse = cold.ssim, cold.delta_e, cold.distinct, cold.max_reuse
        warm.fidelity, warm.reuse_picture = cold.fidelity, cold.reuse_picture
        rows += [cold, warm]
    return rows


def placements(target: Path, tiles: Path, cache: Path, cells: int,
               configs: tuple[Config, ...]) -> dict[str, Counter[str]]:
    """Cells per tile file (base name) under each config, from the tile map (map.json) of a build with the
    zoomable view, run through build_mosaic in one process: `tessera build` prints no placements."""
    code = (
        "import json, sys, dataclasses; from collections import Counter; from pathlib import Path; "
        "from workers.cli.startup import prepare_kernels, prepare_process; prepare_process(); prepare_kernels(); "
        "import config; from workers.cli.build import LocalSource, tile_refs; "
        "from workers.protocol.options import DEFAULT, Options; "
        "from workers.protocol.package import JobPackage; from workers.pipeline.mosaic import build_mosaic\n"
        "t, tiles, cache, cells = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])\n"
        "base = config.load(None); base = dataclasses.replace(base, limits=dataclasses.replace(base.limits, "
        "max_tiles=10**6), mosaic=dataclasses.replace(base.mosaic, tile_cache=cache, tile_memo_mb=0))\n"
        "refs = tile_refs(tiles)\n"
        "for label, blend, dist, uses, over in json.loads(sys.argv[5]):\n"
        "    s = dataclasses.replace(base, mosaic=dataclasses.replace(base.mosaic, **over))\n"
        "    opts = Options(cells, cells, 32, 0, blend=DEFAULT if blend is None else blend, "
        "min_distance=DEFAULT if dist is None else dist, max_uses=DEFAULT if uses is None else uses)\n"
        "    r = build_mosaic(JobPackage.create(t, refs, opts), LocalSource(None, [t, *refs]), s, deepzoom=True)\n"
        "    m = json.loads(r.deepzoom.files['map.json'])\n"
        "    print(json.dumps([label, Counter(Path(m['labels'][c]).name for c in m['cells'])]))\n"
    )
    wanted = [[label, _flag(extra, "--blend", float), _flag(extra, "--min-distance", int),
               _flag(extra, "--max-uses", int), _mosaic_flags(extra)] for label, extra in configs]
    done = subprocess.run([sys.executable, "-c", code, str(target), str(tiles), str(cache), str(cells),
                           json.dumps(wanted)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"placements failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = done.stdout
    return {label: Counter(uses) for label, uses in map(json.loads, out.splitlines())}


def _mosaic_flags(extra: tuple[str, ...]) -> dict[str, bool]:
    """The settings.mosaic fields a row's `tessera build` flags change."""
    return {**({"refine": False} if "--no-refine" in extra else {}),
            **({"space_flat": True} if "--space-flat" in extra else {}),
            **({"count_by_file": True} if "--count-by-file" in extra else {})}


def _flag(extra: tuple[str, ...], flag: str, kind: type) -> object:
    return kind(extra[extra.index(flag) + 1]) if flag in extra else None


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
    print("| run | wall s | CPU s | peak RSS MB | SSIM | ΔE2000 | tile fidelity ΔE | distinct | max reuse (file) "
          "| max reuse (picture) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print(f"| metapixel prepare | {mp_prepare.wall:.2f} | {mp_prepare.cpu:.2f} | {mp_prepare.rss_mb:.0f} "
          "| | | | | | | |")
    for row in rows:
        wall = row.median("wall")
        if row.name.startswith("tessera cold"):
            ratio = f"{mp_total / wall:.1f}× vs mp prepare+build"
        elif row.name.startswith("tessera warm"):
            ratio = f"{mp.median('wall') / wall:.1f}× vs mp build"
        else:
            ratio = ""
        print(f"| {row.name} | {wall:.2f} | {row.median('cpu'):.2f} | {row.median('rss_mb'):.0f} | {row.ssim:.3f} "
              f"| {row.delta_e:.2f} | {row.fidelity:.2f} | {row.distinct} | {row.max_reuse} | {row.reuse_picture} "
              f"| {ratio} |")
    by = {row.name: row for row in rows}
    ours, plain = by["tessera cold, defaults"], by["tessera cold, --blend 0 --min-distance 5"]
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"defaults: SSIM {_gain(ours, mp)}, largest reuse of one visible picture {ours.reuse_picture} vs "
          f"metapixel's {mp.reuse_picture} (aim ≤: {_aim(_le(ours.reuse_picture, mp.reuse_picture))}), "
          f"tile fidelity ΔE {ours.fidelity:.2f}")
    print(f"untouched tiles (--blend 0 --min-distance 5): SSIM {_gain(plain, mp)} (aim ≥ +0.05), ΔE ratio "
          f"{_ratio(plain, mp)} (aim ≤ 0.90): {_aim(_untouched_aim(plain, mp))}")
    for label, what in (("--blend 0 --min-distance 5 --max-uses 0, metapixel's terms", "flat pictures exempt"),
                        ("metapixel's terms, flat pictures spaced too", "every picture spaced"),
                        ("metapixel's exact rule: every file spaced", "every file spaced, as metapixel's")):
        terms = by.get(f"tessera cold, {label}")
        if terms is not None:
            print(f"metapixel's terms (untouched tiles, -d 5, no cap; {what}): SSIM {_gain(terms, mp)}, ΔE ratio "
                  f"{_ratio(terms, mp)}, largest reuse of one visible picture {terms.reuse_picture} vs "
                  f"metapixel's {mp.reuse_picture}")


def _gain(row: Row, mp: Row) -> str:
    return "?" if row.ssim is None or mp.ssim is None else f"{row.ssim - mp.ssim:+.3f}"


def _ratio(row: Row, mp: Row) -> str:
    return "?" if row.delta_e is None or not mp.delta_e else f"{row.delta_e / mp.delta_e:.2f}"


def _le(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a <= b


def _untouched_aim(row: Row, mp: Row) -> bool:
    """Issue 14's first aim: with untouched tiles at metapixel's distance, SSIM +0.05 and ΔE 0.9× of its."""
    return (row.ssim is not None and mp.ssim is not None and row.delta_e is not None and mp.delta_e is not None
            and row.ssim >= mp.ssim + 0.05 and row.delta_e <= 0.9 * mp.delta_e)


def _aim(met: bool) -> str:
    return "met" if met else "missed"


def blend_sweep(work: Path, data: Path, workloads: list[str], targets: list[Path]) -> int:
    """The numbers behind the default blend (README, Colour correction): for each blend in steps of 10 %, the
    mosaic's SSIM and ΔE2000 to the photo and the tile fidelity, on every workload and target; then the rule's
    pick, the largest blend whose tile fidelity stays within the mosaic's ΔE to the photo everywhere."""
    ok = {blend: True for blend in range(0, 101, 10)}
    for name in workloads:
        folder, cells = WORKLOADS[name]
        print(f"\n### blend sweep, {name}\n")
        print("| target | blend % | SSIM | ΔE2000 | tile fidelity ΔE |\n|---|---:|---:|---:|---:|")
        for target in targets:
            for blend in ok:
                out = work / f"sweep-{name}-{target.stem}-{blend}.jpg"
                run = measure(tessera_cmd(target, data / folder, out, cells, "--no-cache", "--blend", str(blend)))
                ssim, delta_e = quality(out, target, cells)
                fidelity = summary_from_tessera(run.stdout)[2]
                ok[blend] = ok[blend] and fidelity <= delta_e
                print(f"| {target.stem} | {blend} | {ssim:.3f} | {delta_e:.2f} | {fidelity:.2f} |", flush=True)
    print(f"\nrule: largest blend with tile fidelity ≤ ΔE2000 to the photo on every target: "
          f"{max(b for b, good in ok.items() if good)} %")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-data"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/tessera-bench"))
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--targets", nargs="*", default=None, help="target stems (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="only the blend sweep behind the default blend")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    # No NUMBA_CACHE_DIR: the command finds its checkout's cache itself (workers/cli/startup.py), warmed here
    # as `make deps` warms it, so no row pays for compiling.
    measure([*TESSERA, "warm-kernels"])
    configs = CONFIGS
    if "--no-refine" in measure([*TESSERA, "build", "--help"]).stdout:
        configs = (*configs, *NO_REFINE)
    targets = sorted((args.data / "targets").glob("*.png"))
    targets = [t for t in targets if args.targets is None or t.stem in args.targets]
    if args.sweep:
        return blend_sweep(args.work, args.data, args.workloads, targets)
    for name in args.workloads:
        folder, cells = WORKLOADS[name]
        tiles, lib = args.data / folder, args.work / f"mplib-{name}"
        lib.mkdir()
        prepare = measure(["metapixel-prepare", f"--width={PX}", f"--height={PX}", str(tiles), str(lib)])
        with multiprocessing.get_context("spawn").Pool(1) as pool:  # its arrays would swell this process, whose
            groups = pool.apply(picture_groups, (tiles,))  # RSS every child's peak (wait4) starts from at fork
        print(f"\n{name}: {len(groups)} tile files, {len(set(groups.values()))} visible pictures "
              f"(8x8 thumbnails within RMS {NEAR_RMS:g} merged)")
        for target in targets:
            rows = bench_target(args.work, name, target, tiles, lib, cells, args.repeats, configs, groups)
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
