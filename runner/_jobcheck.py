"""Schema checks of many jobs, fast: answers cached where the schema allows it.

A manifest may hold 100,000 jobs that differ only in a seed or a prompt.
Validating each whole job costs 30-60 us; most of that is repeated work. When
a model's schema only constrains the object through its key set
(`additionalProperties`, `required`, `x-media-combinations`) and each field
through its own property schema, a job is valid exactly when its key set is
valid and every field is valid on its own. Both answers are cached (the key set
per model, a field's value unless it is long text), so a large manifest costs a
few dictionary look-ups per job. Any job the fast path does not pass is checked
again in full with `iter_errors`, so its issues are exactly the schema's.

A schema using any other top-level keyword (e.g. `if`/`then` on values) gets
no cache: every job is validated whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from ._models import explain_each, iter_errors, load_schema, validator_for

#: top-level keywords whose outcome depends only on which keys a job has
_KEY_SET_KEYWORDS = frozenset(
    {"$schema", "$id", "$defs", "title", "description", "type", "properties", "additionalProperties",
     "required", "x-media-combinations"}
)
#: text longer than this is validated every time rather than cached
_CACHE_TEXT_UP_TO = 100

_SCALARS = (str, int, float, bool, type(None))


def _cache_key(value: Any) -> object | None:
    """A hashable key that tells apart values jsonschema tells apart (1, 1.0 and True differ), or None."""
    kind = type(value)
    if kind is str:
        return value if len(value) <= _CACHE_TEXT_UP_TO else None
    if kind in _SCALARS:
        return (kind, value)
    if kind is list and all(type(v) in _SCALARS for v in value):
        keys = tuple(_cache_key(v) for v in value)
        return None if None in keys else (list, keys)
    return None


class ModelChecker:
    """Validates the fields of jobs of one model, remembering what it can."""

    def __init__(self, model: str) -> None:
        self.model = model
        schema = load_schema(model)
        self.validator = validator_for(model)
        self.fast = set(schema) <= _KEY_SET_KEYWORDS and schema.get("additionalProperties") is False
        self.properties: dict[str, Any] = {}
        if self.fast:
            cls = type(self.validator)
            for name, prop in schema["properties"].items():
                wrapped = {"$defs": schema.get("$defs", {}), **prop}
                self.properties[name] = cls(wrapped, format_checker=self.validator.format_checker)
        self.key_sets: dict[frozenset[str], bool] = {}
        self.values: dict[tuple[str, object], bool] = {}

    def is_valid(self, fields: Mapping[str, Any]) -> bool:
        """Whether the job's fields pass the model's schema."""
        if not self.fast:
            return self.validator.is_valid(fields)
        for name, value in fields.items():
            prop = self.properties.get(name)
            if prop is None:
                return False  # an unknown field: additionalProperties is false
            key = _cache_key(value)
            if key is None:
                if not prop.is_valid(value):
                    return False
                continue
            known = self.values.get((name, key))
            if known is None:
                known = self.values[(name, key)] = prop.is_valid(value)
            if not known:
                return False
        keys = frozenset(fields)
        known = self.key_sets.get(keys)
        if known is None:
            # every field is valid on its own, so the whole verdict is the key set's
            known = self.key_sets[keys] = self.validator.is_valid(dict(fields))
        return known

    def problems(self, fields: Mapping[str, Any]) -> list[tuple[list[str | int], str]]:
        """Every schema problem of the job, as (JSON path parts, sentence), in path order; [] when valid."""
        if self.is_valid(fields):
            return []
        found: list[tuple[list[str | int], str]] = []
        for error in iter_errors(fields):
            found.extend(explain_each(error, self.model))
        return found


@cache
def checker(model: str) -> ModelChecker:
    """The shared checker of `model` (its caches live as long as the process). Raises UnknownModel."""
    return ModelChecker(model)
