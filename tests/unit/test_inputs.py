"""InputStore: uploads saved on the web host and served to workers through signed, expiring URLs."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from web.inputs import InputStore

JOB = "JobId_0123456789abcdef"
PUBLIC = "http://web.example:8080"


@pytest.fixture
def store(tmp_path: Path) -> InputStore:
    return InputStore(str(tmp_path / "uploads"), "signing-key", PUBLIC + "/", ttl=3600)


def saved(store: InputStore, name: str = "t0.png") -> tuple[str, str, str]:
    """Save a file; return (name, exp, sig) from its URL."""
    url = store.save(JOB, name, b"\x89PNG data")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return name, query["exp"][0], query["sig"][0]


def test_save_writes_file_and_returns_signed_url(store: InputStore, tmp_path: Path) -> None:
    before = time.time()
    url = store.save(JOB, "t0.png", b"bytes")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC
    assert parts.path == f"/inputs/{JOB}/t0.png"
    query = parse_qs(parts.query)
    assert set(query) == {"exp", "sig"}
    assert before + 3600 - 1 <= int(query["exp"][0]) <= time.time() + 3600
    assert (tmp_path / "uploads" / JOB / "t0.png").read_bytes() == b"bytes"
    assert not list((tmp_path / "uploads" / JOB).glob(".*"))  # no temporary file left


def test_valid_signature_gives_path(store: InputStore, tmp_path: Path) -> None:
    name, exp, sig = saved(store)
    assert store.path_if_valid(JOB, name, exp, sig) == tmp_path / "uploads" / JOB / name


def test_wrong_signature(store: InputStore) -> None:
    name, exp, sig = saved(store)
    assert store.path_if_valid(JOB, name, exp, "0" * len(sig)) is None
    assert store.path_if_valid(JOB, name, exp, "") is None


def test_other_key_does_not_verify(store: InputStore, tmp_path: Path) -> None:
    name, exp, sig = saved(store)
    other = InputStore(str(tmp_path / "uploads"), "another-key", PUBLIC, ttl=3600)
    assert other.path_if_valid(JOB, name, exp, sig) is None


def test_extended_expiry_breaks_signature(store: InputStore) -> None:
    name, exp, sig = saved(store)
    assert store.path_if_valid(JOB, name, str(int(exp) + 1), sig) is None


def test_expired(store: InputStore) -> None:
    name, _, _ = saved(store)
    url = store.url(JOB, name, now=time.time() - 7200)  # expired an hour ago, correctly signed
    query = parse_qs(urlsplit(url).query)
    assert store.path_if_valid(JOB, name, query["exp"][0], query["sig"][0]) is None


def test_tampered_name_and_job(store: InputStore) -> None:
    saved(store, "t1.png")
    name, exp, sig = saved(store, "t0.png")
    assert store.path_if_valid(JOB, "t1.png", exp, sig) is None
    assert store.path_if_valid(JOB[:-1] + "X", name, exp, sig) is None


def plant(store: InputStore, job_id: str, name: str) -> None:
    """Put a real file where the unchecked path would point, so only the name check can refuse it."""
    path = store.folder / job_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"secret")


@pytest.mark.parametrize("name", ["../x.png", "a/b.png", ".t0.png.part", "t0.PNG", "t0", "x.png.exe"])
def test_bad_names_refused(store: InputStore, name: str) -> None:
    _, exp, _ = saved(store)
    plant(store, JOB, name)
    sig = store._sign(JOB, name, int(exp))  # even correctly signed, the name itself is refused
    assert store.path_if_valid(JOB, name, exp, sig) is None


@pytest.mark.parametrize("job_id", ["..", "short", "a/b/c/d/e", "../" + JOB])
def test_bad_job_ids_refused(store: InputStore, job_id: str) -> None:
    _, exp, _ = saved(store)
    plant(store, job_id, "t0.png")
    assert store.path_if_valid(job_id, "t0.png", exp, store._sign(job_id, "t0.png", int(exp))) is None


@pytest.mark.parametrize("exp", ["abc", "", "-1", "1e10", " 99999999999"])
def test_non_digit_expiry(store: InputStore, exp: str) -> None:
    name, _, sig = saved(store)
    assert store.path_if_valid(JOB, name, exp, sig) is None


def test_missing_file_is_none(store: InputStore) -> None:
    url = store.url(JOB, "never.png")
    query = parse_qs(urlsplit(url).query)
    assert store.path_if_valid(JOB, "never.png", query["exp"][0], query["sig"][0]) is None


def test_unicode_digit_expiry(store: InputStore) -> None:
    name, _, sig = saved(store)
    assert store.path_if_valid(JOB, name, "²", sig) is None


def test_non_ascii_signature(store: InputStore) -> None:
    name, exp, _ = saved(store)
    assert store.path_if_valid(JOB, name, exp, "é") is None
