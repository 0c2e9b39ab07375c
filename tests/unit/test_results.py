"""The local result store's folders (the zoomable view): written whole or not at all, replaced on a rerun, swept."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers.protocol.files import sweep
from workers.results import stores as results
from workers.results.stores import LocalResultStore

JOB = "J" * 22
FILES = {"image.dzi": b"<Image/>", "map.json": b"{}", "thumb.jpg": b"thumb",
         "image_files/0/0_0.jpg": b"a", "image_files/1/0_0.jpg": b"b", "image_files/1/1_0.jpg": b"c"}


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_folder_is_stored_whole_and_readable(tmp_path: Path) -> None:
    store = LocalResultStore(str(tmp_path / "media"))
    assert store.put_folder(JOB, FILES) == f"{JOB}.dz"
    folder = tmp_path / "media" / f"{JOB}.dz"
    assert tree(folder) == FILES
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "image_files" / "1").stat().st_mode) & 0o055 == 0o055  # the web host reads it
    assert stat.S_IMODE((folder / "map.json").stat().st_mode) & 0o044 == 0o044
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == [f"{JOB}.dz"]  # no temporaries left


def test_second_run_replaces_the_folder_and_leaves_nothing_else(tmp_path: Path) -> None:
    store = LocalResultStore(str(tmp_path))
    store.put_folder(JOB, FILES)
    second = {"image.dzi": b"<Image2/>", "image_files/0/0_0.jpg": b"z"}
    store.put_folder(JOB, second)
    assert tree(tmp_path / f"{JOB}.dz") == second  # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{JOB}.dz"]


def test_a_failed_write_leaves_the_old_folder_and_no_temporary(tmp_path: Path) -> None:
    store = LocalResultStore(str(tmp_path))
    store.put_folder(JOB, FILES)
    with pytest.raises(ValueError, match="relative path"):
        store.put_folder(JOB, {"map.json": b"new", "../escape.txt": b"x"})
    assert tree(tmp_path / f"{JOB}.dz") == FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{JOB}.dz"]
    assert not (tmp_path.parent / "escape.txt").exists()


@pytest.mark.parametrize("name", ["/abs.jpg", "a/../b.jpg", "a//b.jpg", "./a.jpg", "a\\b.jpg", ""])
def test_paths_that_could_leave_the_folder_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        results._relative_parts(name)


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_sweep_removes_expired_files_and_their_emptied_folders(tmp_path: Path) -> None:
    store = LocalResultStore(str(tmp_path))
    old, new = "O" * 22, "N" * 22
    store.put_folder(old, FILES)
    store.put(old, b"jpeg", "jpg")
    store.put_folder(new, FILES)
    store.put(new, b"jpeg", "jpg")
    for path in sorted((tmp_path / f"{old}.dz").rglob("*"), reverse=True) + [tmp_path / f"{old}.dz",
                                                                              tmp_path / f"{old}.jpg"]:
        age(path, 7200)
    assert sweep(str(tmp_path), max_age=3600) == len(FILES) + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{new}.dz", f"{new}.jpg"]
    assert tree(tmp_path / f"{new}.dz") == FILES
    assert sweep(str(tmp_path), max_age=3600) == 0


def test_sweep_keeps_a_new_empty_folder_and_an_old_folder_with_new_files(tmp_path: Path) -> None:
    (tmp_path / "fresh").mkdir()  # e.g. an upload folder made a moment before its first file
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "new.png").write_bytes(b"x")
    age(busy, 7200)
    sweep(str(tmp_path), max_age=3600)
    assert (tmp_path / "fresh").is_dir() and (busy / "new.png").is_file()


def test_orphans_of_a_killed_writer_are_removed_and_a_live_writers_kept(tmp_path: Path) -> None:
    """A store cut short by SIGKILL leaves `.<id>.<pid>.<random>.part` (and `.old`) names; a worker's start
    removes those whose writer is gone, never one a live process is writing, nor anything else."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that was this machine's and is gone now
    dead, live = child.pid, os.getpid()
    names = {f".job1.{dead}.abc123.part": "dir", f".job2.jpg.{dead}.x9y8z7.part": "file",
             f".job3.dz.{dead}.0badcafe.old": "dir", f".job4.{live}.abc123.part": "dir",
             "job5.jpg": "file", ".job6.jpg.abcdefgh.part": "file", "job7.dz": "dir"}
    for name, kind in names.items():
        if kind == "dir":
            (tmp_path / name).mkdir()
            (tmp_path / name / "image.dzi").write_bytes(b"x")
        else:
            (tmp_path / name).write_bytes(b"x")
    assert LocalResultStore(str(tmp_path)).remove_orphans() == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".job4.{live}.abc123.part", "job5.jpg", ".job6.jpg.abcdefgh.part", "job7.dz"])


def test_temporary_names_carry_the_writers_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalResultStore(str(tmp_path))
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.put("job8", b"data", "jpg")
    assert seen and seen[0].startswith(f".job8.jpg.{os.getpid()}.") and seen[0].endswith(".part")
    assert store.remove_orphans() == 0 and (tmp_path / "job8.jpg").read_bytes() == b"data"


def test_remove_takes_one_jobs_result_and_folder_and_follows_no_link(tmp_path: Path) -> None:
    media, outside = tmp_path / "media", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not ours")
    store = LocalResultStore(str(media))
    other = "K" * 22
    for job in (JOB, other):
        store.put_folder(job, FILES)
        store.put(job, b"jpeg", "jpg")
    os.symlink(outside, media / f"{JOB}.png")  # a link planted under a result's name: removed, not followed
    assert store.remove(JOB) == 3
    assert sorted(p.name for p in media.iterdir()) == [f"{other}.dz", f"{other}.jpg"]
    assert (outside / "keep.txt").read_text() == "not ours" and tree(media / f"{other}.dz") == FILES
    assert store.remove(JOB) == 0
