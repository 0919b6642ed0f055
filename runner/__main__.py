"""`python -m runner`: expected errors become one line and an exit code."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
