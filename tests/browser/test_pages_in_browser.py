"""The web pages in a real browser (Debian's Chromium, driven by Playwright) against a real node.

The node is the real supervisord.conf (redis with ACL users, web, two workers). One browser uploads a
photo and tiles through the form, watches the progress bar, explores the finished mosaic in the viewer
and finds it under My mosaics; a second browser must not see it. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.browser.conftest import CHROMIUM
from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.nodes import ROOT, Node, lay_out
from tests.helpers.processes import wait_until
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import serving
from workers.protocol import status, stream
from workers.protocol.connection import connect
from workers.protocol.keys import Keys
from workers.protocol.status import JobState
from workers.service.heartbeat import Heartbeat

SHOTS = ROOT / "var" / "screenshots"
ADMIN_PASSWORD = "browser-" + secrets.token_urlsafe(12)
TILE_NAMES = [f"friend-{n:02d}.png" for n in range(12)]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),  # a whole node boots, then a real browser drives it
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (`make system-deps` installs it)"),
]

if CHROMIUM.exists():
    from playwright.sync_api import Browser, ConsoleMessage, Page, Response


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = lay_out(tmp_path_factory.mktemp("node"), {"web": {"admin_password": ADMIN_PASSWORD}})
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("pictures")
    target = folder / "target.png"
    target.write_bytes(encode(make_target(480, 320)))
    tiles = []
    for name, tile in zip(TILE_NAMES, make_tiles(len(TILE_NAMES), px=48), strict=True):
        (folder / name).write_bytes(encode(tile))
        tiles.append(folder / name)
    return target, tiles


class Console:
    """Console errors and page errors of a page; CSP violations show up here as errors."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.messages.append(f"{message.type}: {message.text}")

    def _response(self, reply: Response) -> None:
        if reply.status >= 400:
            self.messages.append(f"{reply.status}: {reply.url}")

    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if "Content Security Policy" in m]


def watch_progress(page: Page, timeout: float) -> list[float]:
    """Values the progress bar shows until the job page says done (or failed)."""
    seen: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value, final = page.evaluate("""() => [document.getElementById('progress').value,
            ['state-done', 'state-failed'].some((c) => document.getElementById('job').classList.contains(c))]""")
        if not seen or seen[-1] != value:
            seen.append(float(value))
        if final:
            return seen
        time.sleep(0.1)
    raise TimeoutError(f"the job page did not finish in {timeout:.0f} s; progress seen: {seen}")


def test_make_explore_and_find_a_mosaic(node: Node, browser: Browser, pictures: tuple[Path, list[Path]]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    target, tiles = pictures
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    page = context.new_page()
    console = Console(page)
    page.goto(node.base_url + "/")

    page.set_input_files("#target", str(target))
    page.wait_for_selector("#target-preview:not([hidden])")
    assert cast(str, page.get_attribute("#target-thumb", "src", timeout=5000)).startswith("blob:")
    page.set_input_files("#tiles", [str(path) for path in tiles])
    assert page.locator("#tile-list li").count() == len(tiles)
    assert cast(str, page.locator("#tile-list img").first.get_attribute("src")).startswith("blob:")
    page.click("#tile-list li:first-child .tile-remove")  # friend-00 is not wanted after all
    assert page.locator("#tile-list li").count() == len(tiles) - 1
    used = TILE_NAMES[1:]
    assert page.locator("#tile-list .tile-name").all_inner_texts() == used

    page.fill("#grid", "96")
    page.fill("#tile_px", "32")
    page.wait_for_function("document.getElementById('estimate').textContent.includes('3,072 × 2,048 px')")
    assert "MB" in page.inner_text("#estimate")
    page.click("#submit")
    page.wait_for_url("**/mosaics/*", timeout=30_000)
    job_id = page.url.rsplit("/", 1)[1]

    seen = watch_progress(page, timeout=45)
    print("progress seen:", seen)
    assert seen[-1] == 1.0 and seen == sorted(seen), seen
    assert seen[0] < 1.0 and len(set(seen)) >= 2, f"the progress bar never moved: {seen}"
    assert "state-done" in (page.get_attribute("#job", "class") or ""), page.inner_text("#error")
    page.wait_for_selector("#colour:not([hidden])", timeout=5000)  # the blend used and how far it moved the tiles
    colour = page.inner_text("#colour")
    assert colour.startswith("Colour blend ") and "ΔE" in colour, colour

    # The finished mosaic in the viewer, with its tile map.
    page.wait_for_selector("#viewer[data-state='open']", timeout=15_000)
    page.wait_for_selector("#result[data-tilemap='ready']", timeout=15_000)
    page.wait_for_selector("#viewer[data-loaded='yes']", timeout=15_000)
    page.screenshot(path=str(SHOTS / "job.png"))
    box = page.locator("#viewer").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    zoom_before = float(page.get_attribute("#viewer", "data-zoom") or 1)
    page.mouse.move(x, y)
    for _ in range(4):
        page.mouse.wheel(0, -400)
        time.sleep(0.15)
    page.wait_for_function(f"Number(document.getElementById('viewer').dataset.zoom) > {zoom_before * 2}",
                           timeout=10_000)

    page.mouse.move(x + 7, y + 5)  # a move inside the canvas names the tile under the pointer
    page.wait_for_function("document.getElementById('tile-label').textContent.length > 0", timeout=5000)
    assert page.inner_text("#tile-label") in used
    assert page.is_visible("#tile-tip") and page.is_visible(".cell-outline")
    page.wait_for_selector("#viewer[data-loaded='yes']", timeout=15_000)
    page.screenshot(path=str(SHOTS / "job-zoomed.png"), full_page=True)

    href = page.get_attribute("#download", "href")
    assert href == f"/media/{job_id}.jpg"
    download = context.request.get(node.base_url + href)
    assert download.status == 200 and download.headers["content-type"] == "image/jpeg"
    assert page.input_value("#share-url") == node.base_url + f"/mosaics/{job_id}"

    # My mosaics lists it, with its thumbnail.
    page.click("#nav-mine")
    page.wait_for_url("**/mine")
    item = page.locator(f".mine-item[data-id='{job_id}']")
    assert item.count() == 1
    assert item.locator("img.mine-thumb").get_attribute("src") == f"/media/{job_id}.dz/thumb.jpg"
    page.wait_for_function("[...document.images].every((img) => img.complete && img.naturalWidth > 0)")
    page.screenshot(path=str(SHOTS / "mine.png"))
    assert console.csp_violations() == [] and not any(m.startswith("page error") for m in console.messages), \
        console.messages

    # Another browser sees none of them.
    stranger = browser.new_context()
    other = stranger.new_page()
    other.goto(node.base_url + "/mine")
    assert other.locator(".mine-item").count() == 0 and other.is_visible("#mine-empty")
    assert stranger.request.get(node.base_url + "/api/mine").json() == {"mosaics": []}
    stranger.close()
    context.close()


def test_phone_width_and_api_errors(node: Node, browser: Browser, pictures: tuple[Path, list[Path]]) -> None:
    context = browser.new_context(viewport={"width": 380, "height": 800}, is_mobile=True, has_touch=True)
    page = context.new_page()
    console = Console(page)
    page.goto(node.base_url + "/")
    target, tiles = pictures
    page.set_input_files("#target", str(target))
    page.set_input_files("#tiles", [str(tiles[0])])
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing sticks out
    page.fill("#grid", "abc")
    page.click("#submit")
    page.wait_for_selector("#form-error:not([hidden])")
    assert "grid must be COLSxROWS" in page.inner_text("#form-error")
    assert "rejected" in page.inner_text("#form-error .error-code")
    page.screenshot(path=str(SHOTS / "phone-error.png"), full_page=True)
    assert console.csp_violations() == []
    context.close()


def test_admin_page_screenshot(node: Node, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 860},
                                  http_credentials={"username": "admin", "password": ADMIN_PASSWORD})
    page = context.new_page()
    console = Console(page)
    reply = page.goto(node.base_url + "/admin")
    assert reply is not None and reply.status == 200, f"/admin answered {reply and reply.status}"
    page.screenshot(path=str(SHOTS / "admin.png"), full_page=True)
    assert console.csp_violations() == []
    context.close()


BACKGROUND = (0x0B, 0x0D, 0x12)
"""The viewer's background (style.css `.viewer`): what shows around a mosaic that is seen whole."""


def is_background(pixel: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= 8 for a, b in zip(pixel[:3], BACKGROUND, strict=True))


@pytest.mark.parametrize("width, height", [(320, 320), (480, 160)])
def test_the_viewer_opens_on_the_whole_mosaic(node: Node, browser: Browser, width: int, height: int) -> None:
    """A square mosaic in the wide viewer (and a wide one) first shows whole: the background on both sides (or
    above and below), never the mosaic cut at its edges."""
    from PIL import Image

    from workers.cli import client

    tiles = [encode(tile) for tile in make_tiles(24, px=24)]
    code, reply = client.submit(node.base_url, encode(make_target(width, height, seed=3)), tiles,
                                {"grid": "24" if width == height else "48", "tile_px": "16"})
    assert code == 202, reply
    assert client.wait_for(node.base_url, reply["status_url"], timeout=60)["state"] == "done"
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    page = context.new_page()
    page.goto(node.base_url + reply["page_url"])
    page.wait_for_selector("#viewer[data-loaded='yes']", timeout=30_000)
    time.sleep(2.5)  # the viewer springs to its first view: let it settle before looking
    shot = SHOTS / f"viewer-{width}x{height}.png"
    page.locator("#viewer").screenshot(path=str(shot))
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        w, h = rgb.size
        centre = rgb.getpixel((w // 2, h // 2))
        edges = ([rgb.getpixel((3, h // 2)), rgb.getpixel((w - 4, h // 2))] if width == height else
                 [rgb.getpixel((w // 2, 3)), rgb.getpixel((w // 3, h - 4))])
    assert isinstance(centre, tuple) and not is_background(centre), "no mosaic in the middle of the viewer"
    assert all(isinstance(p, tuple) and is_background(p) for p in edges), \
        f"the {width}x{height} mosaic opens cropped: {edges} at its sides ({shot})"
    context.close()


def test_a_queued_job_page_shows_its_place(make_settings: SettingsFactory, browser: Browser) -> None:
    """With no worker running, the second of two queued jobs shows that it is number 2 in line, the first that it
    is next; no eta without a recent build time."""
    import json

    from workers.cli import client

    body = json.dumps({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"]}).encode()
    with serving(make_settings) as web:
        pages = []
        for _ in range(2):
            code, reply = client.request(web.base_url + "/api/mosaics", body, "application/json")
            assert code == 202, reply
            pages.append(web.base_url + reply["page_url"])
        context = browser.new_context(viewport={"width": 1200, "height": 860})
        page = context.new_page()
        console = Console(page)
        for url, text in zip(pages, ["Next in line.", "Number 2 in line."], strict=True):
            page.goto(url)
            page.wait_for_selector("#queue-place:not([hidden])", timeout=10_000)
            assert page.inner_text("#queue-place") == text
        page.screenshot(path=str(SHOTS / "job-queued.png"))

        # A worker takes the first and builds it in 3 s; the second is next, done in about that.
        worker, keys = connect(web.settings.redis, "worker"), Keys(web.settings.redis.prefix)
        taken = stream.take_new(worker, keys, "browser-0")
        assert taken is not None
        assert status.finish(worker, keys, taken[1]["id"], 60, JobState.DONE, ack_entry=taken[0], build_seconds=3.0)
        beat = Heartbeat(worker, keys, "browser", "browser-0", interval=60, claim_every=60)
        beat.release()
        beat.beat()
        wait_until(lambda: page.inner_text("#queue-place") == "Next in line, done in about 3 s.", timeout=10,
                   what="the eta on the page")
        beat.stop()
        assert console.csp_violations() == []
        context.close()


def test_cancel_on_the_job_page_and_delete_in_my_mosaics(make_settings: SettingsFactory, browser: Browser) -> None:
    """With no worker running, the job page's Cancel button ends a queued job `canceled`; My mosaics' Delete
    button (confirmed) removes another job and its entry."""
    import json

    body = json.dumps({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"]})
    with serving(make_settings) as web:
        context = browser.new_context(viewport={"width": 1200, "height": 860})
        replies = [context.request.post(web.base_url + "/api/mosaics", data=body,
                                        headers={"Content-Type": "application/json"}).json() for _ in range(2)]
        page = context.new_page()
        console = Console(page)
        page.goto(web.base_url + replies[0]["page_url"])
        page.wait_for_selector("#cancel:not([hidden])", timeout=10_000)
        page.click("#cancel")
        page.wait_for_selector("#job.state-canceled", timeout=10_000)
        assert page.inner_text("#state") == "Canceled" and page.is_hidden("#cancel")
        page.screenshot(path=str(SHOTS / "job-canceled.png"))

        page.goto(web.base_url + "/mine")
        page.on("dialog", lambda dialog: dialog.accept())
        doomed = page.locator(f".mine-item[data-id='{replies[1]['id']}']")
        doomed.locator(".mine-delete").click()
        doomed.wait_for(state="detached", timeout=10_000)
        assert page.locator(".mine-item").count() == 1 and page.inner_text("#mine-status") == "Deleted."
        assert context.request.get(web.base_url + replies[1]["status_url"]).status == 404
        assert console.csp_violations() == [] and not any(m.startswith("page error") for m in console.messages)
        context.close()
