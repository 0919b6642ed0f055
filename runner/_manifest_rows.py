"""Jobs from a CSV or JSONL file: one job per row, each row remembering its line.

A CSV file has a header row of field names; an empty cell means "not given"
(the defaults apply). Cells are text, so each is read as the type the model's
schema wants for that field: integers, booleans, numbers, and lists for
`reference_images` (a JSON list, or references separated by `|`). A JSONL file
holds one JSON object per line; blank lines are skipped.

Positions: a row's fields are reported at the row's line and, for CSV, the
column number of the cell (for JSONL, the column where the key is written).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._manifest_yaml import Issue, Pos, Source, Where
from ._models import MODEL_IDS, load_schema

ROW_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

_INT = re.compile(r"^[+-]?\d+$")
_KEY_END = re.compile(r'"\s*:')
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class RowPos(Pos):
    """The position of a row, and of each of its fields (computed only when asked)."""

    __slots__ = ("columns", "text", "keys")

    def __init__(self, where: Where, columns: Mapping[str, int] | None, text: str | None, keys: dict[str, Any]) -> None:
        super().__init__(where, None)
        self.columns = columns  # CSV: field -> 1-based column number (shared by all rows)
        self.text = text  # JSONL: the line itself
        self.keys = keys  # the row's own fields: only membership is used

    def has(self, key: str) -> bool:
        return key in self.keys

    def child(self, key: str | int) -> Pos | None:
        if not isinstance(key, str) or key not in self.keys:
            return None
        if self.columns is not None:
            column = self.columns.get(key, 0)
        else:
            found = self.text.find(json.dumps(key)) if self.text is not None else -1
            column = found + 1 if found >= 0 else 0
        return Pos(Where(self.where.source, self.where.line, column))


@dataclass(slots=True)
class Row:
    """One row: its fields as read, and their positions."""

    fields: dict[str, Any]
    pos: RowPos


def _field_types(model: object) -> Mapping[str, Any]:
    if model not in MODEL_IDS:
        return {}
    return load_schema(str(model))["properties"]


def coerce_cell(value: str, prop: Mapping[str, Any] | None) -> Any:
    """A CSV cell as the type its schema property asks for; unchanged when it does not parse."""
    kind = prop.get("type") if prop else None
    text = value.strip()
    if kind == "integer" and _INT.match(text):
        return int(text)
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            return value
    if kind == "boolean":
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        return value
    if kind == "array":
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                return value
            return parsed
        return [part.strip() for part in text.split("|") if part.strip()]
    return value


def read_csv(text: str, source: Source, model_hint: object, issues: list[Issue]) -> Iterator[Row]:
    """Rows of a CSV text; problems become issues at their line."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        issues.append(Issue.at(Where(source, 1), f"invalid CSV: {exc}"))
        return
    if not header:
        issues.append(Issue.at(Where(source, 1), "the CSV file is empty: its first row must name the fields"))
        return
    header = [h.strip() for h in header]
    columns: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if not name:
            issues.append(Issue.at(Where(source, 1, index), f"column {index} has no name in the header"))
        elif name in columns:
            issues.append(Issue.at(Where(source, 1, index), f"duplicate column '{name}' (first is column {columns[name]})"))
        else:
            columns[name] = index
    types_by_model: dict[object, Mapping[str, Any]] = {}
    line = reader.line_num
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            issues.append(Issue.at(Where(source, reader.line_num), f"invalid CSV: {exc}"))
            line = reader.line_num
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            issues.append(
                Issue.at(Where(source, start, len(header) + 1), f"the row has {len(cells)} cells but the header names {len(header)}")
            )
            continue
        raw = {name: cell for name, cell in zip(header, cells) if name and cell.strip() != ""}
        model = raw.get("model", model_hint)
        types = types_by_model.get(model)
        if types is None:
            types = types_by_model[model] = _field_types(model)
        fields = {key: coerce_cell(value, types.get(key)) for key, value in raw.items()}
        yield Row(fields, RowPos(Where(source, start, 1), columns, None, fields))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def read_jsonl(text: str, source: Source, issues: list[Issue]) -> Iterator[Row]:
    """Rows of a JSONL text; problems become issues at their line."""
    # lines end at "\n" only: splitlines() would also cut at U+2028, U+0085 and the like,
    # which JSON allows raw inside a string
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if isinstance(value, dict) and len(_KEY_END.findall(line)) > len(value):
                # maybe a key given twice (or just '":' inside a text): parse again, checking
                value = json.loads(line, object_pairs_hook=_no_duplicates)
        except _DuplicateKey as exc:
            found = line.find(json.dumps(exc.key), line.find(json.dumps(exc.key)) + 1)
            issues.append(Issue.at(Where(source, number, found + 1 if found >= 0 else 0), f"duplicate key '{exc.key}'"))
            continue
        except json.JSONDecodeError as exc:
            issues.append(Issue.at(Where(source, number, exc.colno), f"invalid JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            issues.append(Issue.at(Where(source, number, 1), "each line must be a JSON object, one job per line"))
            continue
        yield Row(value, RowPos(Where(source, number, 1), None, line, value))
