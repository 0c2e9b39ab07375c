"""The vendored front-end library is the one pinned in web/frontend (package.json and its lock file)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "web" / "frontend"
VENDOR = ROOT / "web" / "static" / "vendor" / "openseadragon"


def test_openseadragon_vendored_version_equals_the_pin() -> None:
    pin = json.loads((FRONTEND / "package.json").read_text())["dependencies"]["openseadragon"]
    assert pin[0].isdigit(), f"pin an exact version, not {pin!r}"
    locked = json.loads((FRONTEND / "package-lock.json").read_text())["packages"]["node_modules/openseadragon"]
    assert locked["version"] == pin and locked["integrity"].startswith("sha512-")
    assert (VENDOR / "VERSION").read_text().splitlines()[0] == f"openseadragon {pin}"
    head = (VENDOR / "openseadragon.min.js").read_text()[:200]
    assert f"//! openseadragon {pin}\n" in head


def test_the_viewer_has_its_buttons_and_licence() -> None:
    for name in ("zoomin", "zoomout", "home", "fullpage"):
        for state in ("rest", "hover", "pressed", "grouphover"):
            assert (VENDOR / "images" / f"{name}_{state}.png").is_file()
    assert "Redistribution" in (VENDOR / "LICENSE.txt").read_text()


def test_no_page_loads_anything_from_elsewhere() -> None:
    for path in [*(ROOT / "web" / "views").glob("*.tpl"), *(ROOT / "web" / "static").glob("*.js")]:
        text = path.read_text()
        assert "//cdn" not in text and "unpkg" not in text and "jsdelivr" not in text, path
    for path in (ROOT / "web" / "views").glob("*.tpl"):
        text = path.read_text()
        assert "<style" not in text and " style=" not in text, f"inline style breaks the CSP: {path}"
        assert "<script>" not in text and " on" + "click=" not in text, f"inline script breaks the CSP: {path}"
