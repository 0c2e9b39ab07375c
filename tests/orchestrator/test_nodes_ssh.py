"""Node control against real sshd servers: host keys, remote commands, SFTP results, a refused node."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from config.scaling import NodeSpec
from config.settings import ResultSettings
from orchestrator import nodekeys
from orchestrator.nodes import NodeControl, NodeUnreachable, Ssh
from orchestrator.policy import NodeState
from tests.helpers.cluster import ClusterFactory
from tests.helpers.sshd import keygen
from workers.protocol.errors import TransientError
from workers.results.stores import SftpResultStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # the first test may provision the nodes


def test_remote_commands_quote_arguments_and_stream_large_output(cluster: ClusterFactory) -> None:
    c = cluster(names=("a",))
    spec = c.scaling.node("a")
    ssh = Ssh(spec, c.scaling.ssh)
    try:
        tricky = "it's $HOME; `rm -rf /` && echo \"x\""
        assert ssh.run("printf", "%s", tricky).stdout == tricky
        big = ssh.run("sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' o; head -c 2000000 /dev/zero >&2",
                      timeout=60)
        assert len(big.stdout) == 1 << 20 and set(big.stdout) == {"o"}  # the tail is kept, nothing blocked
        assert len(big.stderr) == 1 << 20
        failed = ssh.run("sh", "-c", "echo oops >&2; exit 7", check=False)
        assert (failed.rc, failed.stderr) == (7, "oops\n")
    finally:
        ssh.close()


def test_unknown_and_changed_host_keys_are_refused(cluster: ClusterFactory, tmp_path: Path) -> None:
    c = cluster(names=("a",))
    spec = c.scaling.node("a")
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(NodeUnreachable, match="unknown host key"):
        NodeControl(dataclasses.replace(spec, known_hosts=str(empty)), c.scaling.ssh).check()
    assert not empty.read_text()  # never added on the fly
    with pytest.raises(NodeUnreachable, match="authentication failed"):
        keygen(tmp_path / "stranger")
        NodeControl(dataclasses.replace(spec, key_file=str(tmp_path / "stranger")), c.scaling.ssh).check()
    c.servers["a"].stop()
    with pytest.raises(NodeUnreachable, match="cannot connect"):
        NodeControl(spec, c.scaling.ssh).check()


def test_a_node_whose_host_key_changed_is_marked_failed(cluster: ClusterFactory) -> None:
    c = cluster(names=("a",), min_nodes=1, max_nodes=1)
    server = c.servers["a"]
    server.stop()
    for name in ("host_key", "host_key.pub"):
        (server.folder / name).unlink()
    keygen(server.folder / "host_key")  # the "same machine" comes back with a new key
    server.start()
    c.start_orchestrator()
    c.wait_state("a", NodeState.FAILED, timeout=30)
    record = c.registry().get("a")
    assert "host key mismatch" in record.reason and record.failures == 1
    assert not (c.install("a") / "supervisord.conf").exists()  # nothing was done on it
    assert c.orchestrator is not None and c.thread is not None and c.thread.is_alive()


def test_results_reach_the_web_host_over_sftp(cluster: ClusterFactory, tmp_path: Path) -> None:
    c = cluster(names=("a",), min_nodes=1, max_nodes=1)
    c.start_orchestrator()
    c.wait_state("a", NodeState.ACTIVE, timeout=120)
    [job] = c.submit(1)
    final = c.wait_final([job], timeout=120)[job]
    assert final["state"] == "done", final
    assert final["worker"].startswith("a-")  # made on the node, not here
    _only_the_worker_secrets_reached(c.install("a") / "config", c.settings)
    _a_key_of_its_own_reached(c.install("a") / "config", c)
    media = Path(c.settings.paths.media)
    assert (media / f"{job}.jpg").stat().st_size > 1000
    assert not list(media.glob(".*.part"))
    # the store itself: atomic replace on a second run, refused with a wrong host key
    results = c.scaling.remote.results
    store = SftpResultStore(ResultSettings(store="sftp", host=results.host, port=results.port, user="root",
                                           key_file=results.key_file, known_hosts=results.known_hosts,
                                           path=str(media), timeout=5))
    assert store.put(job, b"second run", "jpg") == f"{job}.jpg"
    assert (media / f"{job}.jpg").read_bytes() == b"second run"
    store.close()
    wrong = tmp_path / "wrong_known_hosts"
    kind, key = keygen(tmp_path / "other").split()[:2]
    wrong.write_text(f"[{results.host}]:{results.port} {kind} {key}\n")
    bad = SftpResultStore(ResultSettings(store="sftp", host=results.host, port=results.port, user="root",
                                         key_file=results.key_file, known_hosts=str(wrong), path=str(media),
                                         timeout=5))
    with pytest.raises(TransientError, match="BadHostKey"):
        bad.put(job, b"x", "jpg")
    assert paramiko  # imported for the types used by the store


def test_spec_defaults() -> None:
    assert NodeSpec(name="n", install_path="/srv/t/").venv_path == "/srv/t/venv"


def _a_key_of_its_own_reached(folder: Path, c: Any) -> None:
    """The node stored with a key made for it alone, whose line in the web host's keys file names it."""
    shipped = (folder / "results_key").read_bytes()
    assert shipped != Path(c.scaling.remote.results.key_file).read_bytes()  # not the key the others have
    keys = Path(c.settings.results.authorized_keys).read_text()
    assert nodekeys.nodes_in(keys) == ["a"]
    public = paramiko.Ed25519Key(filename=str(folder / "results_key")).get_base64()
    assert f"restrict ssh-ed25519 {public} tessera-node:a\n" in keys


def _only_the_worker_secrets_reached(folder: Path, settings: Any) -> None:
    """The node ran its job with the worker's Redis password and the SFTP key, and holds no other secret."""
    local = yaml.safe_load((folder / "local.yaml").read_text())
    assert local["redis"]["password"] == settings.redis.worker_password
    assert local["redis"]["url"].startswith("redis://worker@")
    every_file = b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())
    for secret in (settings.redis.password, settings.redis.web_password, settings.redis.orchestrator_password,
                   settings.web.signing_key):
        assert secret and secret.encode() not in every_file
