"""Where the API key comes from: `DASHSCOPE_API_KEY`, else `~/.alibabacloud/credentials`.

The key is returned to the caller and nothing else: it is never printed,
logged or written anywhere by this module.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "DASHSCOPE_API_KEY"
FILE_KEY = "dashscope_api_key"

HOW_TO_SET = (
    f"no DashScope API key: set {ENV_VAR}=sk-... in the environment, or put "
    f"'{FILE_KEY} = sk-...' in ~/.alibabacloud/credentials; or run against the "
    "built-in simulator with --simulate"
)


def credentials_path(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".alibabacloud" / "credentials"


def parse_credentials(text: str) -> str | None:
    """The `dashscope_api_key` in an INI-ish credentials file, with or without a section header.

    Looks in `[default]` first, then any other section; None when absent or the
    text is not parseable.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError:
        try:
            parser.read_string("[default]\n" + text)
        except configparser.Error:
            return None
    except configparser.Error:
        return None
    sections = ["default", *(s for s in parser.sections() if s != "default")]
    for section in sections:
        if parser.has_option(section, FILE_KEY):
            value = parser.get(section, FILE_KEY).strip().strip("'\"")
            if value:
                return value
    return None


def load_api_key(environ: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """The API key from the environment, else the credentials file; None when neither has one."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR, "").strip()
    if value:
        return value
    path = credentials_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # unreadable counts as absent, like unparseable text
        return None
    return parse_credentials(text)
