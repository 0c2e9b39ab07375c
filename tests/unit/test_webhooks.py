"""Webhooks without servers: the Standard Webhooks signature (the spec's own test vector and the reference
library), the secret's form, the option's check, the package and the delivery record; and idempotency's
fingerprint of a submission."""

from __future__ import annotations

import configparser
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import standardwebhooks

import config
from web.idempotency import fingerprint
from web.submit import Submission
from workers.protocol import status, webhooks
from workers.protocol.errors import BadPackage, JobRejected
from workers.protocol.exitcodes import RET_CONFIG
from workers.protocol.idempotency import valid_key
from workers.protocol.options import MAX_WEBHOOK, Options, check_job, parse_options
from workers.protocol.package import JobPackage

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""The test vector of the Standard Webhooks specification (and of Svix's libraries)."""
SPEC_ID, SPEC_TIME, SPEC_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_is_the_specs() -> None:
    key = webhooks.secret_key(SPEC_SECRET)
    assert webhooks.signature(key, SPEC_ID, SPEC_TIME, SPEC_BODY) == SPEC_SIGNATURE


def test_the_reference_library_accepts_our_headers_and_refuses_a_changed_body() -> None:
    secret = webhooks.new_secret()
    now = int(datetime.now(UTC).timestamp())
    payload = webhooks.body("done", {"id": "j1", "state": "done"}, now)
    headers = webhooks.headers(webhooks.secret_key(secret), webhooks.message_id("j1", "done"), now, payload)
    verifier = standardwebhooks.Webhook(secret)
    assert verifier.verify(payload, headers) == {"type": "mosaic.done", "timestamp": json.loads(payload)["timestamp"],
                                                 "data": {"id": "j1", "state": "done"}}
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        verifier.verify(payload.replace(b"done", b"fail"), headers)


def test_the_event_time_is_iso_utc() -> None:
    assert json.loads(webhooks.body("failed", {}, 0.5))["timestamp"] == "1970-01-01T00:00:00.500Z"


@pytest.mark.parametrize("secret", ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="],
                         ids=["empty", "no-prefix", "not-base64", "too-short"])
def test_a_malformed_secret_is_refused(secret: str) -> None:
    with pytest.raises(webhooks.BadSecret):
        webhooks.secret_key(secret)


def test_new_secrets_are_random_and_well_formed() -> None:
    first, second = webhooks.new_secret(), webhooks.new_secret()
    assert first != second and len(webhooks.secret_key(first)) == webhooks.SECRET_BYTES


@pytest.mark.parametrize("url", ["http://example.com/hook", "ftp://example.com/x", "https://", "https://u:p@e.com/",
                                 "https://e.com/a b", "https://e.com:99999/", "https://e.com/" + "x" * MAX_WEBHOOK],
                         ids=["http", "ftp", "no-host", "userinfo", "space", "bad-port", "long"])
def test_the_webhook_option_must_be_a_plain_https_url(url: str) -> None:
    limits = config.load(env={}).limits
    with pytest.raises(JobRejected):
        check_job(parse_options({"webhook": url}, "8", 8), limits)


def test_a_webhook_travels_in_the_package_and_only_when_set() -> None:
    options = parse_options({"webhook": " https://hooks.example.com/t?k=1 "}, "8", 8)
    assert options.webhook == "https://hooks.example.com/t?k=1"
    package = JobPackage.create("https://e.com/t.png", ["https://e.com/a.png"], options)
    assert JobPackage.decode(package.encode()).options.webhook == options.webhook
    assert "webhook" not in Options(8, 0, 8, 0).to_json()  # a worker from before it reads the package as ever
    bad = json.loads(package.encode())
    bad["options"]["webhook"] = 7
    with pytest.raises(BadPackage):
        JobPackage.decode(json.dumps(bad))


def test_a_job_with_a_webhook_starts_waiting_and_shows_its_record_without_the_url() -> None:
    package = JobPackage.create("https://e.com/t.png", [], parse_options({"webhook": "https://h.example/s3"}, "8", 8))
    fields = status.initial_fields(package, package.encode())
    assert fields[webhooks.FIELD] == webhooks.WAITING
    raw = {k: str(v) for k, v in fields.items()} | {webhooks.ATTEMPTS: "2", webhooks.LAST_AT: "5.5",
                                                   webhooks.LAST_RESULT: "HTTP 500"}
    view = status.public_view(package.id, raw)
    assert view["webhook"] == {"state": "waiting", "attempts": 2, "last_attempt_at": 5.5, "last_result": "HTTP 500"}
    assert "h.example" not in json.dumps(view)
    plain = JobPackage.create("https://e.com/t.png", [], Options(8, 0, 8, 0))
    assert webhooks.FIELD not in status.initial_fields(plain, plain.encode())


def test_the_fingerprint_is_what_was_asked_for() -> None:
    options = parse_options({"grid": "8"}, "8", 8)
    base = Submission(options=options, target_file=b"target", tile_files=[b"a", b"b"], tile_names=["a", "b"])
    same = Submission(options=parse_options({"grid": 8}, "8", 8), target_file=b"target", tile_files=[b"a", b"b"],
                      tile_names=["a", "b"])
    assert fingerprint(base) == fingerprint(same)
    for other in (Submission(options=options, target_file=b"target", tile_files=[b"a", b"c"], tile_names=["a", "b"]),
                  Submission(options=options, target_file=b"other", tile_files=[b"a", b"b"], tile_names=["a", "b"]),
                  Submission(options=parse_options({"grid": "9"}, "8", 8), target_file=b"target",
                             tile_files=[b"a", b"b"], tile_names=["a", "b"])):
        assert fingerprint(other) != fingerprint(base)


@pytest.mark.parametrize(("key", "ok"), [("a", True), ("~" * 255, True), ("", False), ("x" * 256, False),
                                         ("caf\u00e9", False), ("a\nb", False)])
def test_idempotency_keys_are_printable_ascii(key: str, ok: bool) -> None:
    assert valid_key(key) is ok


def test_supervisord_leaves_a_sender_without_a_secret_stopped() -> None:
    conf = configparser.RawConfigParser(strict=False)
    conf.read(Path(__file__).resolve().parents[2] / "supervisord.conf")
    program = conf["program:webhooks"]
    assert program["command"].endswith(" webhooks") and program["autorestart"] == "unexpected"
    assert str(RET_CONFIG) in program["exitcodes"].split(",")  # an expected exit: not restarted
