"""Properties of expansion: deterministic, order-preserving, keys stable and unique."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner._manifest import load_manifest
from runner._models import all_known_fields

T2V = "happyhorse-1.0-t2v"
_counter = itertools.count()

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
#: free variable names: not a field name, which would set that field
template_vars = st.lists(words.filter(lambda w: w not in all_known_fields() | {"model"}), min_size=1, max_size=2, unique=True)


@st.composite
def matrices(draw: st.DrawFn) -> dict[str, list[object]]:
    """A matrix of 1-3 variables: free text variables, and maybe seed and duration."""
    matrix: dict[str, list[object]] = {}
    for var in draw(template_vars):
        matrix[var] = draw(st.lists(words, min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        matrix["seed"] = draw(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        matrix["duration"] = draw(st.lists(st.integers(3, 15), min_size=1, max_size=3, unique=True))
    return matrix


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("props")


def write(folder: Path, data: object) -> Path:
    path = folder / f"m{next(_counter)}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def job_entry(matrix: dict[str, list[object]]) -> dict[str, object]:
    text_vars = [v for v in matrix if v not in ("seed", "duration")]
    return {
        "name": "shot-" + "-".join(f"{{{v}}}" for v in text_vars),
        "model": T2V,
        "prompt": "a scene, " + ", ".join(f"{v}={{{v}}}" for v in text_vars),
        "matrix": matrix,
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(matrix=matrices())
def test_matrix_expansion_is_deterministic_and_ordered(matrix: dict[str, list[object]], folder: Path) -> None:
    """The same matrix always gives the same jobs and keys, one per combination, in product order."""
    data = {"campaign": "props", "jobs": [job_entry(matrix)]}
    first = load_manifest(write(folder, data), check_media=False)
    again = load_manifest(write(folder, data), check_media=False)
    assert [(j.name, j.key, j.fields) for j in first.jobs] == [(j.name, j.key, j.fields) for j in again.jobs]
    combos = list(itertools.product(*matrix.values()))
    assert len(first.jobs) == len(combos)
    for job, combo in zip(first.jobs, combos):
        values = dict(zip(matrix, combo))
        for var, value in values.items():
            if var in ("seed", "duration"):
                assert job.fields[var] == value
            else:
                assert f"{var}={value}" in job.fields["prompt"]
    assert len({j.key for j in first.jobs}) == len(first.jobs)
    assert len({j.name for j in first.jobs}) == len(first.jobs)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.fixed_dictionaries(
        {"prompt": words},
        optional={
            "seed": st.integers(0, 1000),
            "duration": st.integers(3, 15),
            "resolution": st.sampled_from(["720P", "1080P"]),
            "watermark": st.booleans(),
        },
    ),
    order=st.randoms(use_true_random=False),
)
def test_key_ignores_field_order_and_follows_content(fields: dict[str, object], order, folder: Path) -> None:  # noqa: ANN001
    """Writing a job's fields in another order keeps its key; changing the prompt changes it."""
    items = list(fields.items())
    shuffled = items[:]
    order.shuffle(shuffled)
    a = {"campaign": "props", "jobs": [{"name": "j", "model": T2V, **dict(items)}]}
    b = {"campaign": "props", "jobs": [{"model": T2V, **dict(shuffled), "name": "j"}]}
    c = {"campaign": "props", "jobs": [{"name": "j", "model": T2V, **dict(items), "prompt": f"{fields['prompt']}!"}]}
    key_a, key_b, key_c = (load_manifest(write(folder, d), check_media=False).jobs[0].key for d in (a, b, c))
    assert key_a == key_b != key_c


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(words, min_size=1, max_size=20, unique=True))
def test_rows_keep_their_file_order(names: list[str], folder: Path) -> None:
    """Jobs from a CSV file come out in row order, each at its own line."""
    names = [f"row-{n}" for n in names]  # "con" and "nul" alone are reserved device names
    rows = folder / f"rows{next(_counter)}.csv"
    rows.write_text("name,prompt\n" + "".join(f"{n},prompt {n}\n" for n in names), encoding="utf-8")
    m = load_manifest(write(folder, {"campaign": "props", "defaults": {"model": T2V}, "jobs_from": rows.name}), check_media=False)
    assert [j.name for j in m.jobs] == names
    assert [j.line for j in m.jobs] == list(range(2, len(names) + 2))
