"""The runner's exception tree, and the exit code each one maps to.

* RunnerError - base of every expected failure; `__main__` turns it into one line.
    * UsageError - bad command line or missing credentials. exit 2
        * ManifestError - the manifest has one or more problems (all of them listed). exit 2
    * LockHeld - another run of the same campaign holds the lock. exit 4
    * Interrupted - SIGINT/SIGTERM stopped the run after journal writes finished. exit 3
    * ApiError - the DashScope API (or the network under it) answered with an error.
        * TransientError - worth retrying: 5xx, 429, timeouts, dropped connections.
            * Throttled - HTTP 429; carries `retry_after` when the server sent one.
        * RequestRejected - HTTP 400: this request will never succeed as it is.
        * AccountError - 401/403 or an account problem (arrears, quota used up). exit 5
    * DownloadError - a result video could not be fetched or failed verification.
        * UrlExpired - storage answered 403: the signed video URL has expired (24 h).

Every class has an `exit_code`, the way click's exceptions do; the CLI catches
`RunnerError` once and exits with it.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Base of every expected runner failure."""

    exit_code = 1


class UsageError(RunnerError):
    """The command line, the environment or the credentials are not usable."""

    exit_code = 2


class ManifestError(UsageError):
    """A manifest has problems; `issues` holds every one of them, in file order."""

    def __init__(self, issues: list) -> None:
        self.issues = list(issues)
        lines = [str(issue) for issue in self.issues]
        super().__init__("\n".join(lines) if lines else "invalid manifest")


class LockHeld(RunnerError):
    """Another run of the same campaign is still running."""

    exit_code = 4


class Interrupted(RunnerError):
    """The run was stopped by a signal after the journal was brought up to date."""

    exit_code = 3


class ApiError(RunnerError):
    """The API answered with an error, or the connection to it failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id


class TransientError(ApiError):
    """A failure that may go away on retry: 5xx, timeouts, dropped connections.

    `reached_server` is False only when the request provably never left this
    machine (DNS failure, connection refused); a create is retried only then.
    """

    def __init__(self, message: str, *, reached_server: bool = True, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.reached_server = reached_server


class Throttled(TransientError):
    """HTTP 429: a rate or allocation quota was exceeded."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RequestRejected(ApiError):
    """HTTP 400: the server refused this request; retrying it unchanged is pointless."""

    @classmethod
    def local_file(cls, path: object, exc: OSError) -> RequestRejected:
        """A local file the request needs cannot be read (code ``LocalFile``)."""
        return cls(f"cannot read {path}: {exc.strerror or exc}", code="LocalFile")


class AccountError(ApiError):
    """401/403 or an account-level refusal: nothing more should be submitted."""

    exit_code = 5


class DownloadError(RunnerError):
    """A result video could not be downloaded or did not verify."""


class UrlExpired(DownloadError):
    """Storage answered 403 for a result video: its signed URL has expired."""
