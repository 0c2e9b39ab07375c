"""Friends as tiles in a real browser (Debian's Chromium, Playwright) against a real node (supervisord.conf).

The node's workers read friend lists from the local fixture network (workers/inputs/friends/fixture.py, every URL
naming 127.0.0.1, which the node allowlists). The form takes a Bluesky handle; the job page shows the gathering's
counts; in the viewer, pointing at a tile names the friend and their handle, and a click opens their profile in
a new tab (the profile site is answered by the browser context itself: nothing leaves the machine).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM
from tests.browser.test_pages_in_browser import SHOTS, Console, watch_progress
from tests.helpers.images import encode, make_target
from tests.helpers.nodes import Node, lay_out
from workers.inputs.friends.fixture import FixtureNetwork

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),  # a whole node boots, then a real browser drives it
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (`make system-deps` installs it)"),
]

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Route

LABEL = re.compile(r"^(F[0-9]+|Alice|Six <b>Sixth</b>) \(@(f[0-9]+|alice)\.bsky\.social\)$")


@pytest.fixture(scope="module")
def network() -> Iterator[FixtureNetwork]:
    with FixtureNetwork(follows=40, followers=30, overlap=10, real_names=False) as fixture:
        yield fixture


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, network: FixtureNetwork) -> Iterator[Node]:
    apis = {name: {"api": network.api(name)} for name in ("bluesky", "mastodon", "github")}
    node = lay_out(tmp_path_factory.mktemp("node"), {"friends": apis})
    try:
        node.start()
        yield node
    finally:
        node.stop()


def test_friends_from_the_form_named_on_hover_and_linked_to_their_profiles(node: Node, browser: Browser,
                                                                           tmp_path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "target.png"
    target.write_bytes(encode(make_target(480, 320)))
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    profiles: list[str] = []
    referers: list[str | None] = []

    def profile_site(route: Route) -> None:  # the profile "site", answered here: no request leaves the machine
        profiles.append(route.request.url)
        referers.append(route.request.headers.get("referer"))
        route.fulfill(status=200, content_type="text/html", body="<title>profile</title>")

    context.route("https://bsky.app/**", profile_site)
    page = context.new_page()
    console = Console(page)
    page.goto(node.base_url + "/")
    page.set_input_files("#target", str(target))
    page.select_option("#friends_network", "bluesky")
    page.fill("#friends_handle", "alice.bsky.social")
    page.select_option("#friends_lists", "both")
    page.check("#friends_include_self")
    page.fill("#grid", "24")
    page.click("#submit")
    page.wait_for_url("**/mosaics/*", timeout=30_000)
    watch_progress(page, timeout=60)
    assert "state-done" in (page.get_attribute("#job", "class") or ""), page.inner_text("#error")
    assert page.inner_text("#friends-counts") == (
        "Friends of alice.bsky.social on Bluesky: 61 listed, 53 pictures, 8 skipped "
        "(6 default avatar, 1 duplicate avatar, 1 refused url).")

    page.wait_for_selector("#viewer[data-state='open']", timeout=15_000)
    page.wait_for_selector("#result[data-tilemap='ready']", timeout=15_000)
    box = page.locator("#viewer").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.move(x + 3, y + 2)  # a move inside the canvas names the friend under the pointer
    page.wait_for_function("document.getElementById('tile-label').textContent.length > 0", timeout=5000)
    label, tip = page.inner_text("#tile-label"), page.inner_text("#tile-tip")
    assert LABEL.match(label) and tip == label, label
    assert page.evaluate("document.getElementById('tile-tip').childElementCount") == 0  # text, never HTML
    handle = label.rsplit("(@", 1)[1].rstrip(")")
    link = page.locator("#tile-profile")
    assert link.get_attribute("href") == f"https://bsky.app/profile/{handle}"
    assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"
    page.screenshot(path=str(SHOTS / "job-friends.png"))

    with context.expect_page(timeout=10_000) as opened:
        page.mouse.click(x + 3, y + 2)  # a click on the named tile opens the profile
    popup = opened.value
    popup.wait_for_load_state()
    assert popup.url == f"https://bsky.app/profile/{handle}" and profiles == [popup.url]
    assert popup.evaluate("window.opener") is None and referers == [None]  # noopener noreferrer
    assert console.csp_violations() == [] and not any(m.startswith("page error") for m in console.messages), \
        console.messages
    context.close()
