"""One exception tree for Tessera: every error we raise on purpose is a ``TesseraError``.

    TesseraError                 (config/errors.py: the bottom layer raises under the same root)
    ├── ConfigError              a config file or env var is wrong: a person must fix it (exit RET_CONFIG)
    │   ├── LocalConfigError     `tessera init` cannot read or extend config/local.yaml (workers/cli/local_config.py)
    │   ├── AccountError         the results account cannot be made as set (orchestrator/account.py)
    │   └── BadSecret            webhooks.secret is not a whsec_ secret (workers/protocol/webhooks.py)
    ├── JobRejected              permanent: fail the job at once with the reason
    │   ├── BadPackage           the job package is not valid JSON / version / fields
    │   ├── BadImage             not an image, corrupt, or a format we do not take
    │   ├── TooLarge             bytes, pixels, cells or tiles over a configured limit
    │   ├── UrlRefused           a URL whose scheme or address we will not fetch
    │   ├── BadHandle            a friend's handle that cannot be an account of its network (inputs/friends)
    │   ├── NoSuchAccount        the network says the account does not exist
    │   └── NoFriends            the friend lists asked for gave no picture (hidden, empty, all skipped)
    ├── TransientError           may succeed later: retry with backoff, then dead-letter
    │   ├── FetchFailed          a fetch timed out or the server answered 5xx
    │   └── StoreUnavailable     the result store (SFTP) cannot be reached
    ├── Hidden                   one friend list the network will not show: a note in the job, never its error
    ├── Canceled                 the job was canceled or deleted while it ran: its worker stops, stores nothing
    ├── FunctionsMissing         Redis has not got this release's functions yet: waited out like an outage
    │                            (workers/protocol/scripts.py; also a redis ConnectionError)
    ├── NotReplicated            with Sentinel, no replica acknowledged a write in time: a 503, or waited out
    │                            like an outage (workers/protocol/replication.py; also a redis RedisError)
    └── NodeError                a worker node could not be driven over SSH (orchestrator/nodes.py)
        ├── NodeUnreachable      connection, authentication or host key refused
        └── CommandFailed        a remote command exited non-zero or timed out

Each class's ``code`` is what a note or a JSON reply says (``error_code``). Redis being unreachable is not a
job's error: the processes catch ``REDIS_DOWN`` (workers/protocol/connection.py) where it happens and wait
the outage out with backoff, so it never costs a job one of its tries.
"""

from __future__ import annotations

from config.errors import ConfigError, TesseraError

__all__ = ["DEAD_LETTER", "INTERNAL", "BadImage", "BadPackage", "Canceled", "ConfigError", "FetchFailed", "JobRejected",
           "StoreUnavailable", "TesseraError", "TooLarge", "TransientError", "UrlRefused"]


class JobRejected(TesseraError):
    """The job can never succeed as given; it fails at once with this reason."""

    code = "rejected"


class BadPackage(JobRejected):
    """A job package could not be decoded; ``raw`` keeps what arrived."""

    code = "bad_package"

    def __init__(self, message: str, raw: bytes | str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class BadImage(JobRejected):
    """An input is not an image we can decode."""

    code = "bad_image"


class TooLarge(JobRejected):
    """An input or the requested output passes a configured limit."""

    code = "too_large"


class UrlRefused(JobRejected):
    """A URL is not http(s) or points at an address we do not fetch from."""

    code = "url_refused"


class TransientError(TesseraError):
    """A failure that may go away; the job is retried with backoff."""

    code = "transient"


class FetchFailed(TransientError):
    """A fetch timed out, the connection failed, or the server answered 5xx."""

    code = "fetch_failed"


class StoreUnavailable(TransientError):
    """The result store cannot be reached (SFTP connection, auth, host key); the job is retried."""

    code = "store_unavailable"


class Canceled(TesseraError):
    """A running job's cancel was asked for, or it was deleted: raised from its progress reports, so the build
    stops where it is (workers/service/progress.py); the worker then writes its ``canceled`` note."""

    code = "canceled"


INTERNAL = "internal"
"""The ``error_code`` of a job failed by an unexpected exception (a bug, not a ``TesseraError``)."""
DEAD_LETTER = "dead_letter"
"""The ``error_code`` of a job given up after too many deliveries (its package is on the dead-letter stream)."""
