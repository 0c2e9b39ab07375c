"""Serve the real web app (web.app.main) for the HTTP rows of the bench.

With ``--noop-shim``, POST /api/mosaics also passes ``options.noop`` through to the job
package. The app itself does not (workers/options.parse_options reads only the mosaic
options), so without the shim an HTTP job is always a real mosaic job and the queue's
own submit→done time cannot be measured through the API. The shim is one
``dataclasses.replace`` per request: it stands for the missing line, not for a change.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import web.submit  # noqa: E402
from web.app import main  # noqa: E402
from workers.protocol.options import Options, parse_options  # noqa: E402


def parse_options_with_noop(raw: dict[str, Any], default_grid: str, default_tile_px: int) -> Options:
    options = parse_options(raw, default_grid, default_tile_px)
    return dataclasses.replace(options, noop=True) if raw.get("noop") is True else options


if __name__ == "__main__":
    if "--noop-shim" in sys.argv[1:]:
        web.submit.parse_options = parse_options_with_noop  # type: ignore[assignment]
    sys.exit(main([]))
