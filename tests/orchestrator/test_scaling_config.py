"""config/scaling.yaml: validation naming file and key, `tessera scale --dry-run`, and the files a node gets."""

from __future__ import annotations

import configparser
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config import ConfigError, Settings
from config.scaling import SCALING_FILE, NodeSpec, load_scaling
from orchestrator import nodeconf
from workers.protocol import cost, stream
from workers.protocol.connection import connect
from workers.protocol.keys import Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage

ROOT = Path(__file__).resolve().parent.parent.parent
NODE = "nodes:\n  - {name: a, host: 10.0.0.1, key_file: /k, known_hosts: /kh}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scaling.yaml"
    path.write_text(text)
    return path


def test_the_committed_file_loads_and_manages_no_nodes() -> None:
    scaling = load_scaling(ROOT / SCALING_FILE)
    assert scaling.nodes == () and scaling.max_nodes == 0


def test_a_full_file_loads(tmp_path: Path) -> None:
    scaling = load_scaling(write(tmp_path, "min_nodes: 1\nmax_nodes: 1\nscale_up: {for_seconds: 3}\n"
                                 "remote: {settings: {queue: {claim_idle: 5}}}\n" + NODE))
    assert scaling.scale_up.for_seconds == 3 and scaling.scale_up.max_step == 1
    assert scaling.nodes[0] == NodeSpec(name="a", host="10.0.0.1", key_file="/k", known_hosts="/kh")
    assert scaling.nodes[0].venv_path == "/opt/tessera/venv"
    assert scaling.remote.settings == {"queue": {"claim_idle": 5}}
    assert scaling.target_backlog_seconds_per_worker == 0  # absent: the job-count rule only
    assert load_scaling(write(tmp_path, "target_backlog_seconds_per_worker: 90\n")).target_backlog_seconds_per_worker \
        == 90


@pytest.mark.parametrize("text, where", [
    ("min_nodes: 2\nmax_nodes: 1\n" + NODE, "min_nodes: 2 is above max_nodes (1)"),
    ("max_nodes: 2\n" + NODE, "max_nodes: 2 is more than the 1 nodes"),
    ("scale_up: {for_secs: 3}\n", "scale_up.for_secs: unknown key"),
    ("scale_down: {idle_seconds: soon}\n", "scale_down.idle_seconds: not a number: 'soon'"),
    ("scale_down: {backlog_per_worker: 9}\n", "scale_down.backlog_per_worker: 9.0 must be below"),
    ("nodes:\n  - {name: a, host: h}\n", "nodes[0].key_file: required"),
    ("nodes: {a: 1}\n", "nodes: must be a list"),
    (NODE + "  - {name: a, host: h, key_file: k, known_hosts: kh}\n", "nodes[1].name: 'a' is listed twice"),
    ("remote: {results: {store: ftp}}\n", "remote.results.store: must be local or sftp"),
    ("min_nodes: [\n", "not valid YAML"),
    ("target_backlog_seconds_per_worker: -5\n", "target_backlog_seconds_per_worker: must not be negative"),
    ("target_backlog_seconds_per_worker: .inf\n", "target_backlog_seconds_per_worker: must be 0 (off) or a number"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_scaling(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert where in str(caught.value)


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"TESSERA_REDIS_URL": settings.redis.url, "TESSERA_REDIS_PASSWORD": settings.redis.password,
           **{f"TESSERA_REDIS_{role.upper()}_PASSWORD": settings.redis.credentials(role)[1] or ""
              for role in ("web", "worker", "orchestrator")},
           "TESSERA_REDIS_PREFIX": settings.redis.prefix, "TESSERA_WEB_SIGNING_KEY": "k",
           "TESSERA_PATHS_ROOT": settings.paths.root, "PATH": "/usr/bin:/bin"}
    local = Path(settings.paths.root) / "empty-local.yaml"  # not this checkout's config/local.yaml
    local.write_text("{}\n")
    return subprocess.run([sys.executable, "-m", "workers", "--config", str(local), *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


@pytest.mark.integration
def test_scale_dry_run_refuses_an_inconsistent_file(settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, "min_nodes: 3\nmax_nodes: 1\n" + NODE)
    done = run_cli(settings, "scale", "--dry-run", "--config", str(path))
    assert done.returncode == 2
    assert f"{path}: min_nodes: 3 is above max_nodes (1)" in done.stderr


@pytest.mark.integration
def test_scale_dry_run_says_what_and_why(settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, "min_nodes: 1\nmax_nodes: 1\n" + NODE)
    done = run_cli(settings, "scale", "--dry-run", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert "would add a: 0 nodes up, below min_nodes 1" in done.stdout
    done = run_cli(settings, "nodes", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[:2] == ["a", "removed"]


@pytest.mark.integration
def test_scale_dry_run_names_the_backlog_seconds(settings: Settings, tmp_path: Path) -> None:
    web = connect(settings.redis, "web")
    jobs = [JobPackage.create("http://e.test/t.png", ["http://e.test/a"], Options(200, 200, 64, 0)) for _ in range(2)]
    for job in jobs:  # two big jobs: few by count, much work
        stream.enqueue(web, Keys(settings.redis.prefix), job)
    web.close()
    seconds = sum(cost.work_units(job) for job in jobs) * cost.PRIOR_SECONDS_PER_UNIT  # no build yet: the prior
    path = write(tmp_path, "min_nodes: 0\nmax_nodes: 1\ntarget_backlog_seconds_per_worker: 30\n"
                 "scale_up: {for_seconds: 0}\n" + NODE)
    done = run_cli(settings, "scale", "--dry-run", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert "would add a: backlog inf s of work per worker above the target 30 s" in done.stdout  # no worker yet
    assert f"backlog 2, inf per worker, 0 workers, 0 nodes up, backlog {seconds:.0f} s of work" in done.stdout


def test_node_files(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("KEY")
    (tmp_path / "kh").write_text("KH")
    scaling = load_scaling(write(tmp_path, NODE.replace("/k,", "/k, workers: 3, venv: /shared/venv,") +
                                 f"remote:\n  redis_url: redis://10.1.1.1:6389/0\n  results:\n    store: sftp\n"
                                 f"    host: 10.1.1.1\n    key_file: {tmp_path}/key\n"
                                 f"    known_hosts: {tmp_path}/kh\n  settings: {{queue: {{claim_idle: 5}}}}\n"))
    spec = scaling.nodes[0]
    files = nodeconf.files(settings, scaling, spec, results_key=b"THIS NODE'S KEY")
    conf = configparser.RawConfigParser()
    conf.read_string(files["supervisord.conf"][0].decode())
    assert set(conf.sections()) == set(nodeconf.NODE_SECTIONS)  # no redis, web or orchestrator
    assert conf["program:worker"]["numprocs"] == "3"
    assert conf["program:worker"]["command"].startswith("/shared/venv/bin/tessera --config %(here)s/config/local")
    local = yaml.safe_load(files["config/local.yaml"][0])
    assert files["config/local.yaml"][1] == 0o600
    assert settings.redis.acl  # these tests' Redis has a user per role: the node logs in as worker
    assert local["node"] == "a" and local["redis"]["url"] == "redis://worker@10.1.1.1:6389/0"
    assert local["redis"]["password"] == settings.redis.worker_password and local["redis"]["embedded"] is False
    text = files["config/local.yaml"][0].decode()
    for secret in (settings.redis.password, settings.redis.web_password, settings.redis.orchestrator_password,
                   settings.web.signing_key):
        assert secret not in text
    assert "web_password" not in local["redis"] and "signing_key" not in local["web"]
    assert local["results"]["store"] == "sftp" and local["results"]["user"] == "tessera-results"
    assert local["results"]["path"] == "/media"  # the media folder inside the account's chroot (paths.media's parent)
    assert local["queue"] == {"claim_idle": 5}
    assert files["config/results_key"] == (b"THIS NODE'S KEY", 0o600)  # made for it, not remote.results.key_file
    with pytest.raises(ValueError, match="no key was made"):
        nodeconf.files(settings, scaling, spec)


def test_a_single_password_host_gives_its_nodes_that_password_and_no_credentials_in_the_url(
        settings: Settings, tmp_path: Path) -> None:
    plain = dataclasses.replace(settings.redis, url="redis://admin:in-url@127.0.0.1:6390/0", web_password="",
                                worker_password="", orchestrator_password="")
    local = nodeconf.node_redis(dataclasses.replace(settings, redis=plain), plain.url)
    assert local == {"url": "redis://127.0.0.1:6390/0", "password": plain.password}


def test_a_sentinel_host_gives_its_nodes_the_sentinels_and_not_the_replication_secrets(settings: Settings) -> None:
    ha = dataclasses.replace(settings.redis, sentinels=["10.1.1.1:26379", "10.1.1.2:26379"], master_name="m",
                             sentinel_client_password="ask", sentinel_password="watch", replica_password="copy")
    local = nodeconf.node_sentinels(dataclasses.replace(settings, redis=ha))
    assert local == {"sentinels": ["10.1.1.1:26379", "10.1.1.2:26379"], "master_name": "m",
                     "sentinel_client_password": "ask", "min_replicas_acked": 1, "wait_timeout_ms": 1000}
    assert nodeconf.node_sentinels(settings) == {}  # no sentinels: the node's config is as before
