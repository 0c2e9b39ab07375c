"""The webhook outbox on a real Redis, as each role writes it: a final note puts a job that has a webhook on it in
the same call (done, dead-lettered, canceled), once; the sender's records never bring back a job
that is gone. And the sender's POST on a real TLS receiver: the URL policy at connect time, no redirect followed,
only trusted certificates."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

from config import Settings
from tests.helpers.settings import SettingsFactory
from tests.helpers.webhooks import Receiver, make_certificate, serve, start_sender
from workers.inputs.fetch import Poster
from workers.protocol import scripts, status, stream, webhooks
from workers.protocol.connection import connect
from workers.protocol.errors import FetchFailed, UrlRefused
from workers.protocol.exitcodes import RET_CONFIG
from workers.protocol.keys import Keys
from workers.protocol.options import Options
from workers.protocol.package import JobPackage
from workers.protocol.status import JobState
from workers.service.webhooks import Sender

pytestmark = pytest.mark.integration


@pytest.fixture
def hooked(make_settings: SettingsFactory) -> Settings:
    return make_settings(TESSERA_WEBHOOKS_SECRET=webhooks.new_secret())


def submitted(settings: Settings, webhook: str = "https://hooks.example/t") -> str:
    package = JobPackage.create("https://e.test/t.png", ["https://e.test/a.png"], Options(4, 4, 8, 0, webhook=webhook))
    stream.enqueue(connect(settings.redis, "web"), Keys(settings.redis.prefix), package)
    return package.id


def outbox(r: redis.Redis, settings: Settings) -> list[tuple[str, float]]:
    pairs = cast(list[tuple[str, float]], r.zrange(Keys(settings.redis.prefix).webhook_outbox, 0, -1, withscores=True))
    return [(str(member), float(score)) for member, score in pairs]


def test_a_final_note_puts_a_job_with_a_webhook_on_the_outbox_once(hooked: Settings, r: redis.Redis) -> None:
    keys, worker = Keys(hooked.redis.prefix), connect(hooked.redis, "worker")
    job, plain = submitted(hooked), submitted(hooked, webhook="")
    assert r.hget(keys.job(job), webhooks.FIELD) == webhooks.WAITING and outbox(r, hooked) == []
    assert status.finish(worker, keys, job, 60, JobState.DONE, result="x.jpg") == 1
    assert status.finish(worker, keys, plain, 60, JobState.DONE, result="y.jpg") == 1
    assert outbox(r, hooked) == [(job, 0.0)]  # due at once
    assert r.hget(keys.job(job), webhooks.FIELD) == webhooks.PENDING
    r.zadd(keys.webhook_outbox, {job: 99.0})  # as the sender's lease leaves it
    assert status.finish(worker, keys, job, 60, JobState.FAILED, error="again") == 0  # already final
    assert outbox(r, hooked) == [(job, 99.0)]


def test_a_dead_letter_announces_it_too(hooked: Settings, r: redis.Redis) -> None:
    keys, worker = Keys(hooked.redis.prefix), connect(hooked.redis, "worker")
    job = submitted(hooked)
    stream.dead_letter(worker, keys, "1-0", {"id": job}, "boom", 5)
    assert [m for m, _ in outbox(r, hooked)] == [job]
    assert r.hget(keys.job(job), "state") == "failed"


def test_a_job_canceled_while_queued_is_announced(hooked: Settings, r: redis.Redis) -> None:
    keys = Keys(hooked.redis.prefix)
    job = submitted(hooked)
    assert status.cancel(connect(hooked.redis, "web"), keys, job, 60)[0] is status.Cancel.CANCELED
    assert [m for m, _ in outbox(r, hooked)] == [job]


def test_the_sender_forgets_a_job_that_is_gone_without_bringing_it_back(hooked: Settings, r: redis.Redis) -> None:
    keys, worker = Keys(hooked.redis.prefix), connect(hooked.redis, "worker")
    job = submitted(hooked)
    status.finish(worker, keys, job, 60, JobState.DONE)
    r.delete(keys.job(job))  # deleted by its owner before its webhook went
    sender = Sender(hooked)  # as the webhooks role
    assert sender.role == "webhooks"
    assert sender.step() == 1
    sender.pool.shutdown(wait=True)
    assert outbox(r, hooked) == [] and not r.exists(keys.job(job))


def test_a_taken_message_is_leased(hooked: Settings, r: redis.Redis) -> None:
    keys, worker = Keys(hooked.redis.prefix), connect(hooked.redis, "worker")
    job = submitted(hooked)
    status.finish(worker, keys, job, 60, JobState.DONE)
    sender, now = connect(hooked.redis, "webhooks"), time.time()

    def take() -> list[str]:
        return list(scripts.call(sender, scripts.WEBHOOK_TAKE, 1, keys.webhook_outbox, now, now + 30, 10))

    assert take() == [job]
    assert take() == []  # held by the first taker until its lease ends…
    assert outbox(r, hooked) == [(job, now + 30)]  # …which a dead sender's lease does, and it is taken again


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Receiver, Path]]:
    cert, key = make_certificate(tmp_path)
    got = Receiver({"/ok": [200], "/moved": [302]})
    url, server = serve(got, cert, key)
    yield url, got, cert
    server.shutdown()
    server.server_close()


def test_the_post_is_pinned_to_what_the_policy_allows(receiver: tuple[str, Receiver, Path]) -> None:
    url, got, cert = receiver
    port = url.rsplit(":", 1)[1]
    allowed = Poster(["127.0.0.1"], 2.0, str(cert))
    assert allowed.post(f"{url}/ok", b"{}", {}) == 200
    rebound = Poster([], 2.0, str(cert), resolver=lambda host, p: ["127.0.0.1"])  # a public name, now loopback
    with pytest.raises(UrlRefused):
        rebound.post(f"https://hooks.example:{port}/ok", b"{}", {})
    assert len(got.at("/ok")) == 1  # the refused one never reached it


def test_a_name_that_turns_to_loopback_after_the_check_is_refused_at_connect(
        receiver: tuple[str, Receiver, Path]) -> None:
    url, got, cert = receiver
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # public when checked, loopback when connected (rebinding)
    poster = Poster([], 2.0, str(cert), resolver=lambda host, port: next(answers))
    with pytest.raises(UrlRefused):
        poster.post(f"https://hooks.example:{url.rsplit(':', 1)[1]}/ok", b"{}", {})
    assert got.at("/ok") == []


def test_a_redirect_is_an_answer_not_followed(receiver: tuple[str, Receiver, Path]) -> None:
    url, got, cert = receiver
    assert Poster(["127.0.0.1"], 2.0, str(cert)).post(f"{url}/moved", b"{}", {}) == 302
    assert got.at("/ok") == []


def test_an_untrusted_certificate_is_refused(receiver: tuple[str, Receiver, Path]) -> None:
    url, got, _cert = receiver
    with pytest.raises(FetchFailed, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        Poster(["127.0.0.1"], 2.0).post(f"{url}/ok", b"{}", {})
    assert got.at("/ok") == []


def test_no_attempt_is_made_past_give_up_after(make_settings: SettingsFactory, r: redis.Redis,
                                               receiver: tuple[str, Receiver, Path]) -> None:
    url, got, cert = receiver
    settings = make_settings(TESSERA_WEBHOOKS_SECRET=webhooks.new_secret(), TESSERA_WEBHOOKS_GIVE_UP_AFTER="0",
                             TESSERA_WEBHOOKS_CA_FILE=str(cert))
    job = submitted(settings, webhook=f"{url}/missing")  # answers 404: worth another try, but not past the limit
    status.finish(connect(settings.redis, "worker"), Keys(settings.redis.prefix), job, 60, JobState.DONE)
    assert Sender(settings).deliver(job) == webhooks.FAILED
    assert len(got.at("/missing")) == 1 and outbox(r, settings) == []


def test_the_sender_will_not_start_without_a_secret(make_settings: SettingsFactory, tmp_path: Path) -> None:
    log = tmp_path / "webhooks.log"
    process = start_sender(make_settings(), log)
    assert process.wait(timeout=60) == RET_CONFIG
    assert "webhooks.secret must start with whsec_" in log.read_text()


def test_a_refused_address_ends_the_delivery_at_once(make_settings: SettingsFactory, r: redis.Redis,
                                                     receiver: tuple[str, Receiver, Path]) -> None:
    url, got, cert = receiver
    settings = make_settings(TESSERA_WEBHOOKS_SECRET=webhooks.new_secret(), TESSERA_FETCH_ALLOW_HOSTS="",
                             TESSERA_WEBHOOKS_CA_FILE=str(cert))  # loopback no longer allowlisted
    job = submitted(settings, webhook=f"{url}/ok")
    keys = Keys(settings.redis.prefix)
    status.finish(connect(settings.redis, "worker"), keys, job, 60, JobState.DONE)
    assert Sender(settings).deliver(job) == webhooks.FAILED
    assert str(r.hget(keys.job(job), webhooks.LAST_RESULT)).startswith("refused: ")
    assert got.at("/ok") == [] and outbox(r, settings) == []


def test_a_job_run_again_announces_its_new_end_as_a_new_message(hooked: Settings, r: redis.Redis) -> None:
    keys, worker = Keys(hooked.redis.prefix), connect(hooked.redis, "worker")
    job = submitted(hooked)
    status.finish(worker, keys, job, 60, JobState.FAILED, error="gave up")
    r.zrem(keys.webhook_outbox, job)
    r.hset(keys.job(job), mapping={"state": "queued", webhooks.FIELD: webhooks.FAILED, webhooks.ATTEMPTS: 10,
                                   webhooks.FIRST_AT: 5.0})  # as `tessera retry` leaves a dead letter's job
    assert status.finish(worker, keys, job, 60, JobState.DONE) == 1
    fields = r.hmget(keys.job(job), [webhooks.FIELD, webhooks.ATTEMPTS, webhooks.FIRST_AT])
    assert fields == [webhooks.PENDING, "0", ""] and [m for m, _ in outbox(r, hooked)] == [job]  # a fresh window
