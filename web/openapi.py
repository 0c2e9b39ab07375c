"""`GET /api/openapi.json`: the OpenAPI 3.1 document of the whole job API, built from the sources the routes use.

The options' schemas come from workers/protocol/options.py (``option_schemas``, with the limits of these settings),
the paths from ``OPERATIONS`` below; tests/unit/test_openapi.py checks that every Bottle route under /api and the
probes is in ``OPERATIONS`` and the other way round, that ``public_view`` answers what ``Status`` says, and that
the document is valid OpenAPI 3.1 (openapi-spec-validator); tests/integration/test_openapi_live.py runs
schemathesis against a live node.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bottle import Bottle, HTTPResponse

from config import Settings
from web.friends_form import FORM_FIELDS as FRIENDS_FORM_FIELDS
from web.submit import FORM_OPTIONS
from workers.inputs.friends.model import LISTS, MAX_FRIENDS, NETWORKS
from workers.protocol.options import option_schemas
from workers.protocol.status import JobState

JSON = "application/json"
PROBES = ("/livez", "/readyz", "/healthz")
"""Routes outside /api that the document describes: what orchestrators and load balancers ask."""


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _reply(description: str, schema: str | None = None, **headers: str) -> dict[str, Any]:
    reply: dict[str, Any] = {"description": description}
    if schema is not None:
        reply["content"] = {JSON: {"schema": ref(schema)}}
    if headers:
        reply["headers"] = {name: {"$ref": f"#/components/headers/{header}"} for name, header in headers.items()}
    return reply


def _error(description: str, **headers: str) -> dict[str, Any]:
    return _reply(description, "Error", **headers)


UNAVAILABLE = _error("Redis is unreachable; try again after Retry-After seconds", **{"Retry-After": "RetryAfter"})
NOT_FOUND = _error("no such mosaic (or it expired, or it is not yours to delete)")
CROSS_SITE = _error("a cross-site request from a browser (CSRF): refused before the route runs")
JOB_ID = {"name": "job_id", "in": "path", "required": True, "description": "the job id from the 202",
          "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"}}


@dataclass(frozen=True)
class Operation:
    """One route of the API: its method and path (OpenAPI's ``{name}`` form) and what the document says of it."""

    method: str
    path: str
    operation_id: str
    summary: str
    responses: dict[str, Any]
    parameters: list[dict[str, Any]] = field(default_factory=list)
    request_body: str | None = None
    """``body`` builds it (it needs the settings' limits)."""
    security: list[dict[str, list[str]]] | None = None

    def document(self, body: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"operationId": self.operation_id, "summary": self.summary,
                               "responses": self.responses}
        if self.parameters:
            out["parameters"] = self.parameters
        if body is not None:
            out["requestBody"] = body
        if self.security is not None:
            out["security"] = self.security
        return out


IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "the same key with the same body within 24 h answers the first 202 again and "
                   "queues nothing; with another body: 422",
                   "schema": {"type": "string", "minLength": 1, "maxLength": 255,  # HTTP drops a value's outer spaces
                              "pattern": "^[\\x21-\\x7e](?:[\\x20-\\x7e]*[\\x21-\\x7e])?$"}}
DELETE_TOKEN = {"name": "X-Delete-Token", "in": "header", "required": False,
                "description": "the delete_token of the 202 (or send it as Authorization: Bearer)",
                "schema": {"type": "string"}}

LINKS = {
    "status": {"operationId": "getMosaic", "parameters": {"job_id": "$response.body#/id"}},
    "cancel": {"operationId": "cancelMosaic", "parameters": {"job_id": "$response.body#/id"}},
    "delete": {"operationId": "deleteMosaic", "parameters": {"job_id": "$response.body#/id",
                                                             "header.X-Delete-Token": "$response.body#/delete_token"}},
}
"""What a client does next with the 202 (and what schemathesis's stateful run follows)."""

OPERATIONS: tuple[Operation, ...] = (
    Operation("post", "/api/mosaics", "createMosaic", "Submit a mosaic: a target and tiles (files or URLs)",
              {"202": {**_reply("queued", "Accepted", **{"Idempotent-Replayed": "IdempotentReplayed"}),
                       "links": LINKS},
               "400": _error("bad input (a field, an option, a URL, the Idempotency-Key); nothing queued"),
               "403": CROSS_SITE,
               "413": _error("too large: the request, an upload, the grid, the tiles or the output"),
               "415": _error("not a supported image, or not multipart or JSON"),
               "422": _error("this Idempotency-Key was used with another body (idempotency_key_reused)"),
               "429": _error("too many submissions a minute, or too many unfinished jobs",
                             **{"Retry-After": "RetryAfter"}),
               "503": _error("Redis is unreachable (queue_unavailable), or with Sentinel no replica acknowledged the "
                             "job in time (not_replicated: it may still run; resend with the same Idempotency-Key); "
                             "try again after Retry-After seconds", **{"Retry-After": "RetryAfter"})},
              parameters=[IDEMPOTENCY_KEY], request_body="submission"),
    Operation("get", "/api/mosaics/{job_id}", "getMosaic", "A job's status, polled by its page about once a second",
              {"200": _reply("the status", "Status"), "404": NOT_FOUND, "503": UNAVAILABLE},
              parameters=[JOB_ID]),
    Operation("delete", "/api/mosaics/{job_id}", "deleteMosaic",
              "Delete a job with its result, zoomable view and uploads (a running one is canceled first)",
              {"204": {"description": "deleted"}, "403": CROSS_SITE, "404": NOT_FOUND, "503": UNAVAILABLE},
              parameters=[JOB_ID, DELETE_TOKEN],
              security=[{"myMosaicsCookie": []}, {"deleteToken": []}, {"deleteTokenHeader": []}]),
    Operation("post", "/api/mosaics/{job_id}/cancel", "cancelMosaic",
              "Cancel a job: a queued one never starts, a running one stops at its next stage or progress tick",
              {"202": _reply("canceled (queued) or winding down (running)", "CancelAccepted"), "403": CROSS_SITE,
               "404": NOT_FOUND, "409": _error("the job is already final (already_final)"), "503": UNAVAILABLE},
              parameters=[JOB_ID, DELETE_TOKEN],  # as for delete: its maker's cookie or the token (web/ownership.py)
              security=[{"myMosaicsCookie": []}, {"deleteToken": []}, {"deleteTokenHeader": []}]),
    Operation("get", "/api/mine", "listMine", "The jobs submitted from this browser (its signed cookie), newest first",
              {"200": _reply("the list", "Mine"), "503": UNAVAILABLE}),
    Operation("get", "/api/openapi.json", "getOpenApi", "This document",
              {"200": {"description": "the OpenAPI 3.1 document", "content": {JSON: {"schema": {"type": "object"}}}}}),
    Operation("get", "/livez", "livez", "Liveness: the process answers (whatever Redis does)",
              {"200": _reply("alive", "Probe")}),
    Operation("get", "/readyz", "readyz", "Readiness: Redis answers and the queue (inbox, jobs stream) can be read",
              {"200": _reply("ready", "Probe"), "503": _reply("not ready, with the reason", "Probe",
                                                              **{"Retry-After": "RetryAfter"})}),
    Operation("get", "/healthz", "healthz", "Redis answers (the older probe; /readyz says more)",
              {"200": _reply("Redis answers", "Health"), "503": _reply("Redis is unreachable", "Health",
                                                                       **{"Retry-After": "RetryAfter"})}),
)


def submission_body(settings: Settings) -> dict[str, Any]:
    """The request body of POST /api/mosaics: JSON with URLs, or a form with files; options from options.py."""
    options = option_schemas(settings.limits, settings.jobs.result_ttl)
    url = {"type": "string", "format": "uri", "pattern": "^https?://"}
    as_json = {"type": "object", "required": ["target_url"],
               "properties": {"target_url": {**url, "description": "the photo to rebuild (http or https)"},
                              "tile_urls": {"type": "array", "items": url, "maxItems": settings.limits.max_tiles,
                                            "description": "tile pictures; at least one, unless friends are asked"},
                              "friends": friends_schema(settings.limits.max_tiles),
                              "options": {"type": "object", "properties": options}}}
    form_options = {name: options[name] for name in FORM_OPTIONS}
    as_form = {"type": "object",
               "properties": {"target": {"type": "string", "contentMediaType": "application/octet-stream",
                                         "description": "the photo to rebuild (or target_url)"},
                              "target_url": url,
                              "tiles": {"type": "array", "items": {"type": "string",
                                                                   "contentMediaType": "application/octet-stream"}},
                              "tile_urls": {"type": "string", "description": "tile URLs, one per line"},
                              **friends_form_schema(settings.limits.max_tiles), **form_options}}
    return {"required": True, "content": {JSON: {"schema": as_json}, "multipart/form-data": {"schema": as_form}}}


def friends_schema(max_tiles: int) -> dict[str, Any]:
    """A JSON submission's ``friends`` (web/friends_form.py; handles checked per network, 400 when bad)."""
    return {"type": "object", "required": ["network", "handle"], "additionalProperties": False,
            "description": "use the profile pictures of this account's follows and/or followers as tiles",
            "properties": {"network": {"type": "string", "enum": list(NETWORKS)},
                           "handle": {"type": "string", "description": "alice.bsky.social, alice@example.social, "
                                      "or a GitHub login"},
                           "lists": {"type": "array", "items": {"type": "string", "enum": list(LISTS)},
                                     "minItems": 1},
                           "max": {"type": "integer", "minimum": 1, "maximum": min(MAX_FRIENDS, max_tiles)},
                           "include_self": {"type": "boolean"}}}


def friends_form_schema(max_tiles: int) -> dict[str, Any]:
    """The form's friends fields (web/friends_form.py FORM_FIELDS)."""
    fields = {"friends_network": {"type": "string", "enum": list(NETWORKS)},
              "friends_handle": {"type": "string", "description": "empty: no friends"},
              "friends_lists": {"type": "string", "enum": ["follows", "followers", "both"]},
              "friends_max": {"type": "string", "pattern": "^[0-9]+$",
                              "description": f"1 to {min(MAX_FRIENDS, max_tiles)}"},
              "friends_include_self": {"type": "string", "description": "present: add the account's own picture"}}
    return {name: fields[name] for name in FRIENDS_FORM_FIELDS}  # a field added there without a schema: KeyError


def schemas() -> dict[str, Any]:
    number, text = {"type": "number"}, {"type": "string"}
    maybe_number = {"type": ["number", "null"]}
    return {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "object", "required": ["code", "message"],
                                           "properties": {"code": text, "message": text}}}},
        "Accepted": {"type": "object", "required": ["id", "status_url", "page_url", "delete_token"],
                     "properties": {"id": text, "status_url": text, "page_url": text,
                                    "delete_token": {**text, "description": "returned once: lets its holder "
                                                     "DELETE the job (Authorization: Bearer)"}}},
        "Status": {"type": "object", "required": ["id", "state", "progress", "stage", "created_at", "started_at",
                                                  "finished_at"],
                   "properties": {"id": text, "state": {"type": "string", "enum": [s.value for s in JobState]},
                                  "progress": {"type": "number", "minimum": 0, "maximum": 1}, "stage": text,
                                  "created_at": maybe_number, "started_at": maybe_number,
                                  "finished_at": maybe_number, "result_url": text, "dzi_url": text,
                                  "tilemap_url": text, "thumb_url": text, "error": text,
                                  "details": {"type": "object"},
                                  "friends": {"type": "object", "description": "a friends job: the gathering's "
                                              "counts (listed, pictures, skipped by reason), live"},
                                  "expires_at": {**number, "description": "Unix seconds when the job and its "
                                                 "files go"},
                                  "position": {"type": "integer", "minimum": 1,
                                               "description": "queued jobs only: 1 is the next to start"},
                                  "eta": {**maybe_number, "minimum": 0,
                                          "description": "queued jobs only: seconds until it should be done; null "
                                          "without recent build times or a ready worker"}}},
        "CancelAccepted": {"type": "object", "required": ["id", "state", "cancel_requested"],
                           "properties": {"id": text, "state": {"type": "string", "enum": ["canceled", "running"]},
                                          "cancel_requested": {"const": True}}},
        "Mine": {"type": "object", "required": ["mosaics"],
                 "properties": {"mosaics": {"type": "array", "items": {
                     "type": "object", "required": ["id", "state", "created_at", "page_url"],
                     "properties": {"id": text, "state": text, "created_at": maybe_number, "page_url": text,
                                    "thumb_url": text}}}}},
        "Probe": {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}, "reason": text}},
        "Health": {"type": "object", "required": ["ok", "redis"],
                   "properties": {"ok": {"type": "boolean"}, "redis": text}},
    }


SECURITY_SCHEMES = {
    "myMosaicsCookie": {"type": "apiKey", "in": "cookie", "name": "tessera_browser",
                        "description": "the signed browser cookie set by the 202 (My mosaics)"},
    "deleteToken": {"type": "http", "scheme": "bearer", "description": "the delete_token of the 202"},
    "deleteTokenHeader": {"type": "apiKey", "in": "header", "name": "X-Delete-Token"},
}
HEADERS = {
    "RetryAfter": {"description": "seconds to wait", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "IdempotentReplayed": {"description": "true: this is the first reply to the same Idempotency-Key again",
                           "schema": {"type": "string", "enum": ["true"]}},
}


def document(settings: Settings) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        body = submission_body(settings) if op.request_body == "submission" else None
        paths.setdefault(op.path, {})[op.method] = op.document(body)
    return {"openapi": "3.1.0",
            "info": {"title": "Tessera", "version": "1",
                     "description": "An elastic photo-mosaic service: submit a photo and tiles, poll the job, get "
                     "the mosaic. Errors are JSON: {\"error\": {\"code\", \"message\"}}."},
            "paths": paths,
            "components": {"schemas": schemas(), "securitySchemes": SECURITY_SCHEMES, "headers": HEADERS}}


def bottle_path(path: str) -> str:
    """``/api/mosaics/{job_id}`` as Bottle writes it: ``/api/mosaics/<job_id>``."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def register(app: Bottle, settings: Settings) -> None:
    body = json.dumps(document(settings))  # the settings do not change while the process runs

    @app.get("/api/openapi.json")
    def openapi() -> HTTPResponse:
        return HTTPResponse(body, status=200, headers={"Content-Type": JSON, "Cache-Control": "public, max-age=60"})
