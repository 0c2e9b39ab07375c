"""One exception tree for Tessera.

    TesseraError
    ├── JobRejected          permanent: fail the job at once with the reason
    │   ├── BadPackage       the job package is not valid JSON / version / fields
    │   ├── BadImage         not an image, corrupt, or a format we do not take
    │   ├── TooLarge         bytes, pixels, cells or tiles over a configured limit
    │   └── UrlRefused       a URL whose scheme or address we will not fetch
    └── TransientError       may succeed later: retry with backoff
        ├── FetchFailed      a fetch timed out or the server answered 5xx
        ├── QueueUnavailable Redis cannot be reached
        └── Retry            raised on purpose to retry after ``delay`` seconds
"""

from __future__ import annotations


class TesseraError(Exception):
    """Base of every error Tessera raises on purpose."""

    code = "error"

    @property
    def reason(self) -> str:
        return str(self)


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


class QueueUnavailable(TransientError):
    """Redis cannot be reached."""

    code = "queue_unavailable"


class Retry(TransientError):
    """Raised on purpose to have the job tried again after ``delay`` seconds."""

    code = "retry"

    def __init__(self, message: str = "retry requested", delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay
