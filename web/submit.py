"""Turn a POST /api/mosaics request (multipart or JSON) into a validated job package."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bottle import FileUpload, LocalRequest

from config import Settings
from web import friends_form
from web.inputs import InputStore
from workers.inputs.friends.model import FriendsRequest
from workers.inputs.images import Probe, probe
from workers.inputs.urlpolicy import UrlPolicy
from workers.protocol.errors import BadImage, JobRejected, TooLarge
from workers.protocol.options import Options, check_job, parse_options
from workers.protocol.package import MAX_TILE_NAME, JobPackage, new_job_id

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "AVIF": "avif",
              "HEIF": "heic"}


FORM_OPTIONS = ("grid", "tile_px", "seed", "webhook", "keep")
"""The options a multipart form may send as fields (a JSON request may send any of options.option_schemas); the
OpenAPI document's form schema is made of the same names (web/openapi.py)."""


@dataclass
class Submission:
    """What a request asked for, before anything is stored."""

    options: Options
    target_url: str | None = None
    target_file: bytes | None = None
    tile_urls: list[str] = field(default_factory=list)
    tile_files: list[bytes] = field(default_factory=list)
    tile_names: list[str] = field(default_factory=list)
    """The original file name of each tile file (base name only), shown when the mosaic is explored."""
    friends: FriendsRequest | None = None
    """Whose profile pictures to gather as tiles (web/friends_form.py); the package records the request."""


def read_submission(request: LocalRequest, settings: Settings) -> Submission:
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return _from_json(request, settings)
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            request.POST  # noqa: B018  (parsed once and kept) Bottle refuses a part header with a NUL: a ValueError
        except ValueError as exc:
            raise JobRejected(f"the form could not be read: {str(exc)[:120]}") from exc
        return _from_form(request, settings)
    raise BadImage(f"send multipart/form-data or application/json, not {content_type or 'no content type'!r}")


def _options(raw: dict[str, Any], settings: Settings) -> Options:
    return parse_options(raw, settings.jobs.default_grid, settings.jobs.default_tile_px)


def _from_json(request: LocalRequest, settings: Settings) -> Submission:
    try:
        data = json.loads(request.body.read(settings.limits.max_request_bytes + 1))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobRejected(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise JobRejected("the body must be a JSON object")
    options = data.get("options") or {}
    target, tiles = data.get("target_url"), data.get("tile_urls") or []
    if not isinstance(options, dict):
        raise JobRejected("options must be an object")
    if not isinstance(target, str) or not target:
        raise JobRejected("target_url is required (a http or https URL)")
    if not isinstance(tiles, list) or not all(isinstance(t, str) for t in tiles):
        raise JobRejected("tile_urls must be a list of URLs")
    urls = _clean_urls(tiles)
    friends = friends_form.from_json(data.get("friends"), settings.limits.max_tiles, len(urls))
    return Submission(options=_options(options, settings), target_url=target, tile_urls=urls, friends=friends)


def _from_form(request: LocalRequest, settings: Settings) -> Submission:
    forms = request.forms
    options = _options({k: forms.get(k) for k in FORM_OPTIONS}, settings)
    targets = [f for f in request.files.getall("target") if f.filename]
    if len(targets) != 1 and not forms.get("target_url"):
        raise JobRejected("attach one target photo (field 'target')")
    limit = settings.limits.max_tiles
    uploads = [f for f in request.files.getall("tiles") if f.filename]
    if len(uploads) > limit:
        raise TooLarge(f"{len(uploads)} tile files is over the limit of {limit}")
    max_bytes = settings.limits.max_upload_bytes
    urls = _clean_urls((forms.getunicode("tile_urls") or "").splitlines())
    fields = {name: forms.getunicode(name) or "" for name in friends_form.FORM_FIELDS}
    return Submission(
        options=options,
        target_file=_read_upload(targets[0], max_bytes) if targets else None,
        target_url=None if targets else forms.get("target_url"),
        tile_urls=urls,
        friends=friends_form.from_form(fields, limit, len(urls) + len(uploads)),
        tile_files=[_read_upload(f, max_bytes) for f in uploads],
        tile_names=[upload_name(f.raw_filename, number) for number, f in enumerate(uploads, 1)],
    )


def upload_name(raw: str | None, number: int) -> str:
    """The client's file name without any folder or control characters, else "tile N"."""
    base = re.split(r"[/\\]", raw or "")[-1]
    name = "".join(ch for ch in base if ch.isprintable()).strip()[:MAX_TILE_NAME]
    return name or f"tile {number}"


def _clean_urls(lines: Iterable[str]) -> list[str]:
    return [line.strip() for line in lines if line.strip()]


def _read_upload(upload: FileUpload, max_bytes: int) -> bytes:
    data: bytes = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(f"{_name(upload)} is over the limit of {_size(max_bytes)}")
    return data


def _size(count: int) -> str:
    return f"{count / 2**20:.0f} MiB" if count >= 2**20 else f"{count / 1024:.0f} kB"


def _name(upload: FileUpload) -> str:
    return repr(upload.raw_filename[:60]) if upload.raw_filename else "an upload"


def check_submission(sub: Submission, settings: Settings, policy: UrlPolicy) -> tuple[Probe | None, list[Probe]]:
    """Everything that can be checked without decoding: options and limits (:func:`check_job`, the check the
    worker runs too), counts, URLs, image headers.

    Returns the probes of the target file (if uploaded) and of the tile files."""
    limits = settings.limits
    total = len(sub.tile_urls) + len(sub.tile_files) + (sub.friends.max if sub.friends else 0)
    if total < max(1, limits.min_tiles):
        raise JobRejected(f"add at least {max(1, limits.min_tiles)} tile picture(s): files, URLs or friends")
    target = None if sub.target_file is None else probe(sub.target_file, limits.max_image_pixels)
    check_job(sub.options, limits, tiles=total, size=None if target is None else (target.width, target.height),
              result_ttl=settings.jobs.result_ttl)
    if sub.options.webhook and not settings.webhooks.secret:
        raise JobRejected("webhooks are off on this server (no webhooks.secret)")
    hook = [sub.options.webhook] if sub.options.webhook else []  # called under the same policy as fetches
    policy.check_all(([sub.target_url] if sub.target_url else []) + sub.tile_urls + hook)  # lookups bounded in time
    tiles = [_probe_tile(number, data, limits.max_image_pixels) for number, data in enumerate(sub.tile_files, 1)]
    return target, tiles


def _probe_tile(number: int, data: bytes, max_pixels: int) -> Probe:
    try:
        return probe(data, max_pixels)
    except (BadImage, TooLarge) as exc:
        raise type(exc)(f"tile file {number}: {exc}") from exc


def store_submission(sub: Submission, target: Probe | None, tiles: list[Probe], inputs: InputStore) -> JobPackage:
    """Save uploads under a new job id and build the package that references them."""
    job_id = new_job_id()
    target_url = sub.target_url or ""
    if sub.target_file is not None and target is not None:
        target_url = inputs.save(job_id, f"target.{_extension(target)}", sub.target_file)
    urls = list(sub.tile_urls)
    for number, (data, tile) in enumerate(zip(sub.tile_files, tiles, strict=True)):
        urls.append(inputs.save(job_id, f"tile-{number:05d}.{_extension(tile)}", data))
    names = [""] * len(sub.tile_urls) + _names(sub) if sub.tile_files else []  # "": a URL is its own label
    return JobPackage.create(target_url, urls, sub.options, job_id=job_id, tile_names=names,
                             friends=sub.friends.as_json() if sub.friends else None)


def _extension(image: Probe) -> str:
    """The file extension of an upload's format (probe gives one of images.FORMATS: an MPO is a JPEG)."""
    if image.format not in EXTENSIONS:
        raise BadImage(f"{image.format or 'this'} images are not taken")
    return EXTENSIONS[image.format]


def _names(sub: Submission) -> list[str]:
    names = sub.tile_names[: len(sub.tile_files)]
    return names + [f"tile {n}" for n in range(len(names) + 1, len(sub.tile_files) + 1)]
