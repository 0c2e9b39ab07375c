"""Unit tests run without any server: Redis-free settings, and a clear failure for a test that asks for one.

The server fixtures of tests/conftest.py are replaced here by ones that fail at once, so a unit test that
starts redis-server, connects to it or serves the app over HTTP is an error naming the fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.settings import SettingsFactory, settings_factory


def _refuse(fixture: str) -> None:
    pytest.fail(f"unit tests run without servers: this test asks for `{fixture}`; "
                "move it to tests/integration (or give it what it needs without a server)", pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> None:
    """Refused (see the module docstring)."""
    _refuse("redis_server")


@pytest.fixture
def r() -> None:
    """Refused: a Redis client needs a server."""
    _refuse("r")


@pytest.fixture
def web() -> None:
    """Refused: the app on a real HTTP server (test routes in process, or in tests/integration)."""
    _refuse("web")


@pytest.fixture
def file_server() -> None:
    """Refused: an HTTP server."""
    _refuse("file_server")


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """As the shared factory, but its settings name no real Redis (a stray connection fails at once)."""
    return settings_factory(tmp_path)
