"""The OpenAPI document (web/openapi.py) against the code it describes, without a server: valid OpenAPI 3.1, the
same routes as the app (both ways), the options parse_options reads, and the status public_view answers."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from tests.helpers.settings import SettingsFactory
from web import openapi
from web.app import make_app
from workers.protocol import options
from workers.protocol.errors import JobRejected
from workers.protocol.queue import Waiting
from workers.protocol.status import public_view


def test_the_document_is_valid_openapi_3_1(make_settings: SettingsFactory) -> None:
    document = openapi.document(make_settings())
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any error (openapi-spec-validator, the 3.1 schema and its checks)


def documented_routes() -> set[tuple[str, str]]:
    return {(op.method.upper(), openapi.bottle_path(op.path)) for op in openapi.OPERATIONS}


def test_every_api_route_and_probe_is_documented_and_nothing_else(make_settings: SettingsFactory) -> None:
    app = make_app(make_settings())  # builds every route; connects to nothing until a request comes
    served = {(route.method, route.rule) for route in app.routes
              if route.rule.startswith("/api/") or route.rule in openapi.PROBES}
    assert served == documented_routes()
    assert any(route.rule == "/metrics" for route in app.routes)  # not part of the API: left out on purpose


def test_paths_are_unique_operations() -> None:
    ids = [op.operation_id for op in openapi.OPERATIONS]
    assert len(ids) == len(set(ids)) and len(documented_routes()) == len(openapi.OPERATIONS)


BAD = {"grid": "x", "tile_px": "many", "seed": "s", "blend": "much", "min_distance": "d", "max_uses": "u",
       "keep_avatars": "maybe", "use_all": "all", "keep": "forever", "webhook": 17}


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_documented_option_is_read_by_the_parser(make_settings: SettingsFactory, name: str) -> None:
    settings = make_settings()
    assert name in options.option_schemas(settings.limits, settings.jobs.result_ttl)
    with pytest.raises(JobRejected, match=name):
        parsed = options.parse_options({name: BAD[name]}, "8x8", 16)
        options.check_job(parsed, settings.limits, result_ttl=settings.jobs.result_ttl)


def test_every_option_field_is_documented(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    documented = set(options.option_schemas(settings.limits, settings.jobs.result_ttl))
    fields = {f.name for f in dataclasses.fields(options.Options)} - {"cols", "rows", "noop"}  # grid; noop: internal
    assert fields <= documented, fields - documented
    assert set(BAD) == documented


def test_documented_bounds_are_the_checked_ones(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    schema = options.option_schemas(settings.limits, settings.jobs.result_ttl)
    low, high = schema["tile_px"]["minimum"], schema["tile_px"]["maximum"]
    options.check_job(options.parse_options({"tile_px": low}, "8x8", 16), settings.limits)
    options.check_job(options.parse_options({"tile_px": high}, "8x8", 16), settings.limits)
    for outside in (low - 1, high + 1):
        with pytest.raises(JobRejected):
            options.check_job(options.parse_options({"tile_px": outside}, "8x8", 16), settings.limits)
    assert re.fullmatch(schema["grid"]["oneOf"][0]["pattern"].strip("^$"), "48x32")


def status_schema(make_settings: SettingsFactory) -> dict[str, Any]:
    return dict(openapi.document(make_settings())["components"]["schemas"]["Status"])


RAW = {"state": "done", "progress": "1", "stage": "done", "created_at": "1.5", "started_at": "2", "finished_at": "3",
       "result": "abc.jpg", "deepzoom": "abc.dz", "error": "", "details": '{"blend": 40}', "expires_at": "100",
       "package": "{}", "worker": "n-0", "deliveries": "1", "seq": "4"}


@pytest.mark.parametrize("raw, waiting", [
    (RAW, None),
    ({"state": "queued", "created_at": "1", "seq": "4"}, Waiting(position=3, eta=None)),
    ({"state": "queued", "created_at": "1"}, Waiting(position=1, eta=12.5)),
    ({"state": "failed", "error": "bad image", "finished_at": "2"}, None),
    ({"state": "running", "progress": "0.5", "stage": "matching"}, Waiting(position=1, eta=1.0)),
])
def test_public_view_answers_what_the_document_says(make_settings: SettingsFactory, raw: dict[str, str],
                                                   waiting: Waiting | None) -> None:
    schema = status_schema(make_settings)
    view = public_view("a" * 22, raw, waiting=waiting)
    OAS31Validator(schema).validate(view)  # as OpenAPI 3.1 reads the schema
    assert set(view) <= set(schema["properties"]), set(view) - set(schema["properties"])
    assert ("position" in view) is (raw["state"] == "queued" and waiting is not None)
