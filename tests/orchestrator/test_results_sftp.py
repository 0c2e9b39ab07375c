"""The SFTP result store's folders (the zoomable view) against a real sshd: whole, replaced on a rerun, no leftovers."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import ResultSettings
from tests.helpers.sshd import SshServer, start_sshd
from workers.results.stores import SftpResultStore

pytestmark = pytest.mark.integration

JOB = "S" * 22
FILES = {"image.dzi": b"<Image/>", "map.json": b'{"labels": []}', "thumb.jpg": b"thumb" * 1000,
         **{f"image_files/{level}/{c}_0.jpg": bytes([level, c]) * 5000 for level in range(3) for c in range(2)}}


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def web_host_sshd(client_key: Any, tmp_path: Path) -> Iterator[SshServer]:
    server = start_sshd(tmp_path / "sshd", "webhost", client_key.authorized_keys)
    (tmp_path / "known_hosts").write_text(server.known_hosts_line + "\n")
    yield server
    server.stop()


def test_folder_over_sftp_is_whole_and_replaced(web_host_sshd: SshServer, client_key: Any,
                                                tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    store = SftpResultStore(ResultSettings(store="sftp", host="127.0.0.1", port=web_host_sshd.port, user="root",
                                           key_file=str(client_key.path), known_hosts=str(tmp_path / "known_hosts"),
                                           path=str(media), timeout=5))
    try:
        assert store.put_folder(JOB, FILES) == f"{JOB}.dz"
        assert tree(media / f"{JOB}.dz") == FILES
        assert stat.S_IMODE((media / f"{JOB}.dz" / "image_files" / "2").stat().st_mode) & 0o055 == 0o055
        second = {"image.dzi": b"<Image2/>", "image_files/0/0_0.jpg": b"z"}
        assert store.put_folder(JOB, second) == f"{JOB}.dz"
        assert tree(media / f"{JOB}.dz") == second  # replaced, not merged
        assert store.put(JOB, b"jpeg", "jpg") == f"{JOB}.jpg"
        assert sorted(p.name for p in media.iterdir()) == [f"{JOB}.dz", f"{JOB}.jpg"]  # no temporaries left
    finally:
        store.close()


def test_remove_over_sftp_takes_the_result_and_its_folder_of_that_job_only(web_host_sshd: SshServer,
                                                                           client_key: Any, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    store = SftpResultStore(ResultSettings(store="sftp", host="127.0.0.1", port=web_host_sshd.port, user="root",
                                           key_file=str(client_key.path), known_hosts=str(tmp_path / "known_hosts"),
                                           path=str(media), timeout=5))
    other = "T" * 22
    try:
        for job in (JOB, other):
            store.put_folder(job, FILES)
            store.put(job, b"jpeg", "jpg")
        assert store.remove(JOB) == 2  # a job canceled or deleted while it was stored (workers/service/daemon.py)
        assert sorted(p.name for p in media.iterdir()) == [f"{other}.dz", f"{other}.jpg"]
        assert tree(media / f"{other}.dz") == FILES
        assert store.remove(JOB) == 0
    finally:
        store.close()
