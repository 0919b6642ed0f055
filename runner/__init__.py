"""runner: a batch runner for DashScope's asynchronous video-generation API."""

from ._errors import (
    AccountError,
    ApiError,
    DownloadError,
    Interrupted,
    LockHeld,
    ManifestError,
    RequestRejected,
    RunnerError,
    Throttled,
    TransientError,
    UsageError,
)

__all__ = [
    "AccountError",
    "ApiError",
    "DownloadError",
    "Interrupted",
    "LockHeld",
    "ManifestError",
    "RequestRejected",
    "RunnerError",
    "Throttled",
    "TransientError",
    "UsageError",
]
