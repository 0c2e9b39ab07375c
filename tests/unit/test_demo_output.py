"""`tessera demo`'s closing lines: where the mosaic is, and the other pages with how to get in."""

from __future__ import annotations

from pathlib import Path

import config
from workers.cli.demo import where_to_look

ROLES = {"TESSERA_REDIS_PASSWORD": "a", "TESSERA_REDIS_WEB_PASSWORD": "w", "TESSERA_REDIS_WORKER_PASSWORD": "k",
         "TESSERA_REDIS_ORCHESTRATOR_PASSWORD": "o"}


def test_the_demo_names_every_page_and_how_to_log_in() -> None:
    settings = config.load(env={**ROLES, "TESSERA_REDIS_MONITOR_PASSWORD": "m", "TESSERA_WEB_ADMIN_PASSWORD": "s3"})
    lines = where_to_look("http://h:1", settings, "/mosaics/abc", Path("var/media/abc.jpg"))
    text = "\n".join(lines)
    for url in ("http://h:1/mosaics/abc", "http://h:1/mine", "http://h:1/admin", "http://h:1/metrics"):
        assert url in text
    assert "user admin, password: web.admin_password in config/local.yaml" in text and "s3" not in text
    assert len(lines) <= 6 and all(len(line) < 100 for line in lines)


def test_the_demo_says_when_admin_and_metrics_are_off() -> None:
    text = "\n".join(where_to_look("http://h:1", config.load(env=ROLES), "/mosaics/abc", Path("x.jpg")))
    assert "off: set web.admin_password" in text and "503: set redis.monitor_password" in text
