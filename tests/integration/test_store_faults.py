"""A local result store that cannot write (disk full, read-only, I/O error) is a transient failure: the job is
retried later, never failed as an internal error (issue 13: 7)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import cast

import pytest
import redis

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.web import WebServer
from workers.cli import client
from workers.protocol.errors import StoreUnavailable
from workers.protocol.keys import GROUP, Keys
from workers.results.stores import LocalResultStore
from workers.service.daemon import Worker

pytestmark = pytest.mark.integration


def unwritable_folder(tmp_path: Path) -> Path:
    """A media folder nothing can be written under: read-only, or (as root, who ignores modes) a plain file
    where its parent folder should be."""
    if os.geteuid() == 0:
        blocker = tmp_path / "not-a-folder"
        blocker.write_bytes(b"")
        return blocker / "media"
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("what", ["file", "folder"])
def test_an_unwritable_local_store_raises_store_unavailable(tmp_path: Path, what: str) -> None:
    store = LocalResultStore(str(unwritable_folder(tmp_path)))
    with pytest.raises(StoreUnavailable, match="cannot store") as caught:
        if what == "file":
            store.put("job-1", b"data", "jpg")
        else:
            store.put_folder("job-1", {"a/b.txt": b"data", "c.txt": b"more"})
    assert isinstance(caught.value.__cause__, OSError)


def test_a_full_disk_makes_the_job_retry_not_fail(web: WebServer, r: redis.Redis, tmp_path: Path) -> None:
    keys = Keys(web.settings.redis.prefix)
    status, reply = client.submit(web.base_url, encode(make_target()), [encode(t) for t in make_tiles(4)],
                                  {"grid": "6"})
    assert status == 202, reply
    queue = dataclasses.replace(web.settings.queue, claim_idle=0.2, transient_tries=1)
    paths = dataclasses.replace(web.settings.paths, media=str(unwritable_folder(tmp_path)))
    broken = Worker(dataclasses.replace(web.settings, queue=queue, paths=paths), slot=0)
    assert broken.run_once()
    job = r.hgetall(keys.job(reply["id"]))
    assert job["state"] == "queued", job  # put back for another delivery, not failed as "internal error"
    assert "cannot store" in job["last_error"] and "error_code" not in job
    assert int(cast(dict[str, int], r.xpending(keys.jobs, GROUP))["pending"]) == 1
    healthy = Worker(dataclasses.replace(web.settings, queue=queue), slot=1)
    time.sleep(0.3)  # past claim_idle: another worker, whose disk is fine, takes it over
    assert healthy.run_once()
    view = client.request(web.base_url + reply["status_url"])[1]
    assert view["state"] == "done", view
    assert (Path(web.settings.paths.media) / f"{reply['id']}.jpg").is_file()
