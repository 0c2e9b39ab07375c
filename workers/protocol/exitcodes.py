"""Exit codes of Tessera's entry points; supervisord's ``exitcodes=`` and the watchdog read them."""

RET_OK = 0
"""Finished normally (a worker after a warm stop)."""
RET_ERROR = 1
"""The command ran and failed (e.g. the demo job failed)."""
RET_CONFIG = 2
"""Bad or missing configuration: do not respawn, a person must fix it."""
RET_CONNECT = 3
"""Redis unreachable at start: respawn once it answers (the watchdog revives FATAL workers)."""
RET_INTERNAL = 70
"""An unexpected error (a bug)."""
