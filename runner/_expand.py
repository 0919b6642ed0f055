"""Expansion: defaults merged under each job, matrices multiplied out, names templated.

Pure: plain data and positions in, `RawJob`s and issues out. A `RawJob` still
carries where each of its fields was written (the job, a matrix entry, a row,
or the defaults) so validation can report the right line.

Matrix rules:

* ``matrix: {seed: [1, 2], style: [noir, pastel]}`` yields one job per
  combination, in order, the last variable changing fastest.
* ``{var}`` in any text field (``prompt``, ``name``, media paths, ...) is
  replaced by the variable's value. A ``{word}`` that names no variable is an
  issue.
* A variable named like a field (``seed``, ``duration``, ``model``, ...) also
  sets that field, keeping its type.
* Variables with more than one value that the name does not mention are
  appended to it (``shot`` -> ``shot-1-noir``), so expanded names are unique.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._manifest_yaml import Issue, Pos, Where
from ._models import all_known_fields

#: most jobs one matrix may expand into
MAX_MATRIX_JOBS = 1_000_000

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class RawJob:
    """A job after expansion, before validation."""

    #: the job's name, or None when it has none
    name: str | None
    #: the model's fields with `model`, without `name`
    fields: dict[str, Any]
    #: where the job starts
    where: Where
    #: where its fields were written, the layer that wins first
    layers: tuple[Pos, ...]
    #: the fields that came from defaults (a default the model does not take is dropped)
    from_defaults: frozenset[str] = frozenset()

    def locate(self, path: Sequence[str | int]) -> Where:
        """The line and column where the value at `path` (a JSON path into the job) was written."""
        if not path or not isinstance(path[0], str):
            return self.where
        head = path[0]
        for layer in self.layers:
            if layer.has(head):
                pos = layer.child(head)
                if pos is not None:
                    return pos.locate(path[1:])
        return self.where


def merge(
    name: str | None, own: Mapping[str, Any], where: Where, layers: tuple[Pos, ...], *defaults: Mapping[str, Any]
) -> RawJob:
    """A job whose own fields override the defaults (outermost defaults last)."""
    fields: dict[str, Any] = {}
    for layer in reversed(defaults):
        fields.update(layer)
    inherited = frozenset(fields) - own.keys() if fields else frozenset()
    fields.update(own)
    fields.pop("name", None)
    return RawJob(name, fields, where, layers, inherited)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _slug(value: Any) -> str:
    return _SLUG.sub("_", _text(value)).strip("_") or "_"


class _Template:
    """A text with `{var}` placeholders, split once and filled many times."""

    __slots__ = ("parts",)

    def __init__(self, text: str) -> None:
        self.parts = _PLACEHOLDER.split(text)

    def names(self) -> list[str]:
        return self.parts[1::2]

    def fill(self, texts: Mapping[str, str]) -> str:
        parts = self.parts[:]
        parts[1::2] = [texts[name] for name in parts[1::2]]
        return "".join(parts)


def expand_matrix(
    name: str | None,
    own: Mapping[str, Any],
    matrix: Mapping[str, list[Any]],
    job_pos: Pos,
    matrix_pos: Pos,
    defaults: Sequence[Mapping[str, Any]],
    default_layers: tuple[Pos, ...],
    issues: list[Issue],
    label: str,
) -> Iterator[RawJob]:
    """Every job of a matrix entry; problems with the entry itself go to `issues`.

    `matrix` must already be a mapping of identifier -> non-empty list of
    scalars (the manifest schema checks it). Nothing is yielded when the entry
    has a problem.
    """
    where = job_pos.where
    field_vars = all_known_fields() | {"model"}
    bad = False
    for var in matrix:
        var_where = matrix_pos.locate([var])
        if var == "name":
            issues.append(Issue.at(var_where, "a matrix variable cannot be called 'name'; use {var} in the name instead", job=label))
            bad = True
        elif var in own:
            issues.append(
                Issue.at(var_where, f"'{var}' is set both by the job and by its matrix; keep one", job=label)
            )
            bad = True
    total = math.prod(len(values) for values in matrix.values())
    if total > MAX_MATRIX_JOBS:
        issues.append(
            Issue.at(matrix_pos.where, f"the matrix expands to {total} jobs, more than the limit of {MAX_MATRIX_JOBS}", job=label)
        )
        bad = True
    layers = (job_pos, *default_layers)
    probe = merge(label, own, where, layers, *defaults)
    base = probe.fields
    inherited = probe.from_defaults - matrix.keys()

    # find the text fields with placeholders, and report unknown ones once
    templates: dict[str, _Template] = {}
    list_templates: dict[str, list[_Template | None]] = {}
    for key, value in base.items():
        if isinstance(value, str) and "{" in value:
            template = _Template(value)
            if template.names():
                templates[key] = template
                bad |= _unknown(template, matrix, probe.locate([key]), key, issues, label)
        elif isinstance(value, list) and any(isinstance(v, str) and "{" in v for v in value):
            items: list[_Template | None] = []
            for index, item in enumerate(value):
                item_template = _Template(item) if isinstance(item, str) and "{" in item else None
                if item_template is not None and item_template.names():
                    items.append(item_template)
                    bad |= _unknown(item_template, matrix, probe.locate([key, index]), f"{key}[{index}]", issues, label)
                else:
                    items.append(None)
            list_templates[key] = items
    name_template = _Template(name) if name is not None else None
    if name_template is not None:
        bad |= _unknown(name_template, matrix, probe.locate(["name"]), "name", issues, label)
    if bad:
        return

    variables = list(matrix)
    mentioned = set(name_template.names()) if name_template is not None else set()
    suffix_at = [n for n, v in enumerate(variables) if len(matrix[v]) > 1 and v not in mentioned]
    setter_at = [(n, v) for n, v in enumerate(variables) if v in field_vars]
    # everything that depends on one variable's value is worked out once, not once per job
    texts = [[_text(x) for x in matrix[v]] for v in variables]
    slugs = [[_slug(x) for x in matrix[v]] for v in variables]
    value_pos: dict[str, list[Pos]] = {}
    for _, var in setter_at:
        var_pos = matrix_pos.child(var) or matrix_pos
        value_pos[var] = [var_pos.child(i) or var_pos for i in range(len(matrix[var]))]
    for combo in itertools.product(*(range(len(matrix[v])) for v in variables)):
        filled = {v: texts[n][i] for n, (v, i) in enumerate(zip(variables, combo))}
        fields = dict(base)
        for key, template in templates.items():
            fields[key] = template.fill(filled)
        for key, items in list_templates.items():
            fields[key] = [t.fill(filled) if t is not None else v for t, v in zip(items, base[key])]
        for n, var in setter_at:
            fields[var] = matrix[var][combo[n]]
        job_name: str | None = None
        if name_template is not None:
            job_name = name_template.fill(filled)
            if suffix_at:
                job_name += "-" + "-".join(slugs[n][combo[n]] for n in suffix_at)
        job_layers = layers
        if setter_at:
            job_layers = (Pos(where, {var: value_pos[var][combo[n]] for n, var in setter_at}), *layers)
        yield RawJob(job_name, fields, where, job_layers, inherited)


def _unknown(template: _Template, matrix: Mapping[str, Any], where: Where, what: str, issues: list[Issue], label: str) -> bool:
    unknown = [n for n in template.names() if n not in matrix]
    if not unknown:
        return False
    names = ", ".join(f"{{{n}}}" for n in dict.fromkeys(unknown))
    known = ", ".join(matrix)
    issues.append(Issue.at(where, f"{what} uses {names}, which is not a matrix variable (the matrix has: {known})", job=label))
    return True
