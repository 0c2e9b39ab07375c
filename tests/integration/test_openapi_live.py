"""Property-based tests of the whole API against a live web app (real waitress server, keeper and Redis) with
schemathesis, from the document it serves at /api/openapi.json: no 5xx, and every response's status, content
type, headers and body as the document says. Bounded and repeatable: a few examples per operation, derandomized.

Every URL a generated request names is pointed at loopback first, so no test resolves or reaches another host
(the web checks a submission's hosts in DNS)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.helpers.settings import SettingsFactory, settings_factory
from tests.helpers.web import WebServer, serving
from web import openapi
from workers.cli import client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES = 8
"""Hypothesis examples per operation: enough to reach each documented status, small enough for a short test."""
LOOPBACK = "http://127.0.0.1:9/picture.png"
URL = re.compile(r"(?i)[a-z][a-z0-9+.-]*:|//")


DOCUMENT = openapi.document(settings_factory(Path(tempfile.gettempdir()) / "tessera-openapi")())
"""The document for the tests' settings (the limits of config/defaults.yaml), as the live app serves it: the test
checks that it does, then generates requests from it."""
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture
def live(make_settings: SettingsFactory) -> Iterator[WebServer]:
    with serving(make_settings) as web:
        code, served = client.request(web.base_url + "/api/openapi.json")
        assert (code, served) == (200, DOCUMENT)
        yield web


def loopback_only(value: Any) -> Any:
    """``value`` with every string that could be a URL replaced by one of loopback."""
    if isinstance(value, str):
        return LOOPBACK if URL.search(value) else value
    if isinstance(value, list):
        return [loopback_only(item) for item in value]
    if isinstance(value, dict):
        return {key: loopback_only(item) for key, item in value.items()}
    return value


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])  # one live app for all examples of an operation
def test_the_api_answers_as_documented(live: WebServer, case: schemathesis.Case) -> None:
    if isinstance(case.body, (dict, list, str)):
        case.body = loopback_only(case.body)
    case.call_and_validate(base_url=live.base_url, checks=[checks.not_a_server_error, checks.status_code_conformance,
                                   checks.content_type_conformance, checks.response_schema_conformance,
                                   checks.response_headers_conformance])


CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance, checks.use_after_free,
          checks.ensure_resource_availability]
"""The checks of the stateful run: those above, and that a deleted job is gone and a created one is there."""


def test_the_api_follows_its_links(live: WebServer) -> None:
    """Sequences the document's links allow: submit, then poll, cancel or delete that job (with its delete token),
    in any order, a few steps each, derandomized."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]  # a class schemathesis makes at run time
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": live.base_url}

        def before_call(self, case: schemathesis.Case) -> None:
            if isinstance(case.body, (dict, list, str)):
                case.body = loopback_only(case.body)

        def validate_response(self, response: Any, case: schemathesis.Case, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(settings=settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                                   stateful_step_count=6,
                                   suppress_health_check=list(HealthCheck)))


def test_a_form_part_with_a_control_character_in_its_header_is_a_400(live: WebServer) -> None:
    """Found by the run above: Bottle refuses a part header with a NUL in it with a ValueError, once a 500."""
    body = (b'--b\r\nContent-Disposition: form-data; name="V\x00"\r\n\r\nx\r\n--b--\r\n')
    code, reply = client.request(live.base_url + "/api/mosaics", body, "multipart/form-data; boundary=b")
    assert code == 400 and reply["error"]["code"] == "rejected", reply
    assert "the form could not be read" in reply["error"]["message"]
