"""Pre-flight checks of local media files against a model's `x-media` limits.

Interim: the media work (issue 5) replaces this with real Pillow/PyAV checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def check_local_file(path: Path, limits: Mapping[str, Any]) -> list[str]:
    """Plain sentences, one per limit the file at `path` breaks; empty when it fits."""
    return []
