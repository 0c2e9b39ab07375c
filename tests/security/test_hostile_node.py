"""Hostile input against a real node: every case gets its exact answer, and no worker restarts.

Prints a table `case → answer` for the record.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from tests.helpers.hostile import Hostile, QuietServer, bad_files, odd_but_good_files, photo
from tests.helpers.images import encode, make_tiles
from tests.helpers.nodes import Node, lay_out, wait_all_final
from workers.cli import client

pytestmark = pytest.mark.integration
ANSWERS: list[tuple[str, str]] = []
TILES = [encode(t) for t in make_tiles(6)]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = lay_out(tmp_path_factory.mktemp("node"), {
        "web": {"rate_limit_per_minute": 100000, "max_active_jobs": 100000},
        "limits": {"max_upload_bytes": 300_000},
        "worker": {"block_ms": 500},
    })
    try:
        node.start()
        node.pids_at_start = node.worker_pids()  # type: ignore[attr-defined]
        yield node
        assert node.worker_pids() == node.pids_at_start  # type: ignore[attr-defined]  # no worker restarted
        print("\n" + "\n".join(f"{case:<34} → {answer}" for case, answer in ANSWERS))
    finally:
        node.stop()


@pytest.fixture(scope="module")
def hostile_base() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def upload(node: Node, target: bytes, tiles: list[bytes] = TILES, **fields: str) -> tuple[int, dict]:
    return client.submit(node.base_url, target, tiles, {"grid": "8", "tile_px": "8", **fields})


def final(node: Node, job_id: str) -> dict[str, str]:
    return wait_all_final(node, [job_id], timeout=60)[job_id]


REFUSED = {
    "zero bytes": (415, "the file is empty"),
    "not an image": (415, "not an image we can read"),
    "html": (415, "not an image we can read"),
    "svg": (415, "not an image we can read"),
    "pdf": (415, "not an image we can read"),
    "tiff": (415, "not an image we can read"),
    "bomb 50000x50000": (413, "50000x50000 pixels, over the limit"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_uploads_are_refused_with_the_reason(node: Node, case: str) -> None:
    status, reply = upload(node, bad_files()[case])
    ANSWERS.append((f"target: {case}", f"HTTP {status} {reply['error']['message'][:60]}"))
    assert (status, True) == (REFUSED[case][0], REFUSED[case][1] in reply["error"]["message"])


def test_a_jpeg_cut_inside_its_header_is_refused(node: Node) -> None:
    status, reply = upload(node, bad_files()["truncated jpeg"])
    ANSWERS.append(("target: truncated jpeg", f"HTTP {status} {reply['error']['message'][:60]}"))
    assert status == 415 and reply["error"]["message"].startswith("corrupt image")


@pytest.mark.parametrize("case", ["truncated png"])
def test_corrupt_targets_fail_their_job(node: Node, case: str) -> None:
    status, reply = upload(node, bad_files()[case])
    assert status == 202, reply
    job = final(node, reply["id"])
    ANSWERS.append((f"target: {case}", f"job {job['state']}: {job['error'][:60]}"))
    assert job["state"] == "failed" and "corrupt image" in job["error"]


def test_a_bad_tile_upload_is_refused(node: Node) -> None:
    status, reply = upload(node, encode(make_tiles(1, px=64)[0]), [*TILES, bad_files()["svg"]])
    ANSWERS.append(("tile upload: svg", f"HTTP {status} {reply['error']['message'][:60]}"))
    assert status == 415 and reply["error"]["message"].startswith("tile file 7:")


def test_an_oversized_upload_is_413(node: Node) -> None:
    status, reply = upload(node, b"\x89PNG" + b"\x00" * 400_000)
    ANSWERS.append(("target: 400 kB over a 300 kB limit", f"HTTP {status} {reply['error']['message'][:60]}"))
    assert status == 413


@pytest.mark.parametrize("case", sorted(odd_but_good_files()))
def test_real_world_formats_make_mosaics(node: Node, case: str) -> None:
    status, reply = upload(node, odd_but_good_files()[case], TILES[:3] + [odd_but_good_files()[case]])
    assert status == 202, reply
    job = final(node, reply["id"])
    ANSWERS.append((f"target+tile: {case}", f"job {job['state']}"))
    assert job["state"] == "done", job
    assert json.loads(job["details"])["tiles_skipped"] == 0


def test_hostile_tile_urls_are_skipped_and_counted(node: Node, hostile_base: str) -> None:
    bad = ["/page.png", "/to-private", "/to-metadata", "/endless.png", "/missing.png", "/loop"]
    urls = [f"{hostile_base}/ok.png"] + [hostile_base + path for path in bad]
    status, reply = client.submit(node.base_url, encode(make_tiles(1, px=64)[0]), [], {"grid": "6"}, tile_urls=urls)
    assert status == 202, reply
    job = final(node, reply["id"])
    skipped = json.loads(job["details"])["tiles_skipped"]
    ANSWERS.append(("tile URLs: 1 good + 6 hostile", f"job {job['state']}, {skipped} skipped"))
    assert job["state"] == "done" and json.loads(job["details"])["tiles_skipped"] == 6


def test_only_hostile_tiles_fail_the_job_with_the_reason(node: Node, hostile_base: str) -> None:
    urls = [hostile_base + "/to-metadata", hostile_base + "/page.png"]
    status, reply = client.submit(node.base_url, encode(np.asarray(photo())), [], {"grid": "6"}, tile_urls=urls)
    job = final(node, reply["id"])
    ANSWERS.append(("tile URLs: only hostile", f"job {job['state']}: {job['error'][:70]}"))
    assert job["state"] == "failed" and job["error"].startswith("only 0 of 2 tiles could be used")


@pytest.mark.parametrize(("case", "raw", "reason"), [
    ("bad json", "{not json", "not valid JSON"),
    ("unknown version", json.dumps({"v": 9, "id": "pkg-unknown-version-01"}), "unknown package version 9"),
    ("missing fields", json.dumps({"v": 1, "id": "pkg-missing-fields-0001"}), "missing field 'target'"),
])
def test_bad_packages_in_the_stream_fail_their_job(node: Node, case: str, raw: str, reason: str) -> None:
    r = node.redis()
    job_id = json.loads(raw)["id"] if raw.startswith("{\"") else None
    if job_id:
        r.hset(f"tessera:job:{job_id}", mapping={"state": "queued", "created_at": 0})
    r.xadd("tessera:jobs", {"package": raw})
    if job_id:
        job = final(node, job_id)
        ANSWERS.append((f"stream package: {case}", f"job {job['state']}: {job['error'][:60]}"))
        assert job["state"] == "failed" and reason in job["error"]
    else:
        ok, reply = upload(node, encode(np.asarray(photo())))  # the worker went on to the next job
        assert final(node, reply["id"])["state"] == "done"
        ANSWERS.append((f"stream package: {case}", "acknowledged and dropped; next job done"))
