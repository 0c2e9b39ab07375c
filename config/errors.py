"""The root of Tessera's exception tree, and the configuration error.

They live here, in the bottom layer that imports nothing of ours, so that config can raise its own errors
under the one root; ``workers.protocol.errors`` re-exports both and draws the whole tree.
"""

from __future__ import annotations


class TesseraError(Exception):
    """Base of every error Tessera raises on purpose; ``code`` names it in notes and JSON."""

    code = "error"

    @property
    def reason(self) -> str:
        return str(self)


class ConfigError(TesseraError):
    """A configuration file or env var holds an unknown key or a bad value; a person must fix it."""

    code = "config"
