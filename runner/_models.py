"""What the runner knows about each model: its schema and how its fields map onto the API body.

The limits of a model live only in `schemas/<model-id>.json`. This module loads
those schemas, validates a job's flat, friendly fields against them (custom
keywords included), turns the fields into the API's create body and back, and
explains every schema error as one plain sentence. It is pure: no network, and
no files but the schemas.

Custom schema keywords:

* ``x-prompt-length`` - ``{"max_units": N, "cjk_weight": W}``: a CJK character
  counts W units, any other character 1.
* ``x-media-combinations`` - the sets of media fields a model accepts together.
* ``x-media`` - the limits of a local media file (checked by the media
  pre-flight, not by the schema validator).
* ``format: media-ref`` - an http, https or oss URL, or a path without a scheme.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

#: every model the runner can drive; each has `schemas/<id>.json`
MODEL_IDS: tuple[str, ...] = (
    "happyhorse-1.0-t2v",
    "happyhorse-1.0-i2v",
    "happyhorse-1.0-r2v",
    "happyhorse-1.0-video-edit",
    "wan2.7-i2v",
)

#: friendly field -> API media type, for fields holding one media reference
SINGLE_MEDIA: dict[str, str] = {
    "first_frame": "first_frame",
    "last_frame": "last_frame",
    "first_clip": "first_clip",
    "driving_audio": "driving_audio",
    "video": "video",
}
#: friendly field -> API media type, for fields holding a list of references
LIST_MEDIA: dict[str, str] = {"reference_images": "reference_image"}
#: friendly fields that go into `input`, not `parameters`
INPUT_FIELDS: tuple[str, ...] = ("prompt", "negative_prompt")
#: fields that identify the job rather than describe the request
JOB_FIELDS: tuple[str, ...] = ("name", "model")

MEDIA_FIELDS: tuple[str, ...] = (*SINGLE_MEDIA, *LIST_MEDIA)
_MEDIA_TYPE_TO_FIELD = {**{v: k for k, v in SINGLE_MEDIA.items()}, **{v: k for k, v in LIST_MEDIA.items()}}
ALLOWED_SCHEMES = ("http", "https", "oss")


@dataclass(frozen=True, slots=True)
class ModelRow:
    """How a model's output is shaped: where its duration and aspect ratio come from."""

    id: str
    #: "parameter" (the `duration` field) or "input_video" (the `video` field, capped)
    duration_from: str
    #: "parameter" (the `ratio` field), "first_frame", "input_video", "first_clip"
    ratio_from: str
    #: the longest output, in seconds, for models whose duration follows an input
    max_output_seconds: int = 15


MODEL_TABLE: dict[str, ModelRow] = {
    "happyhorse-1.0-t2v": ModelRow("happyhorse-1.0-t2v", "parameter", "parameter"),
    "happyhorse-1.0-i2v": ModelRow("happyhorse-1.0-i2v", "parameter", "first_frame"),
    "happyhorse-1.0-r2v": ModelRow("happyhorse-1.0-r2v", "parameter", "parameter"),
    "happyhorse-1.0-video-edit": ModelRow("happyhorse-1.0-video-edit", "input_video", "input_video"),
    "wan2.7-i2v": ModelRow("wan2.7-i2v", "parameter", "first_frame"),
}


class UnknownModel(ValueError):
    """The model id is not one of MODEL_IDS."""

    def __init__(self, model: object) -> None:
        hint = difflib.get_close_matches(str(model), MODEL_IDS, n=1)
        suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
        super().__init__(f"unknown model '{model}'{suffix}; known models: {', '.join(MODEL_IDS)}")
        self.model = model


# --- prompt length ---------------------------------------------------------

def is_cjk(char: str) -> bool:
    """True for CJK ideographs, kana, hangul and full-width forms."""
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xAC00 <= code <= 0xD7AF  # hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x3000 <= code <= 0x303F  # CJK punctuation
        or 0x20000 <= code <= 0x2FA1F  # extensions B..
        or unicodedata.east_asian_width(char) == "W"
    )


def prompt_units(text: str, cjk_weight: int = 2) -> int:
    """Length of a prompt in limit units: a CJK character counts `cjk_weight`, others 1."""
    if text.isascii():
        return len(text)
    return sum(cjk_weight if is_cjk(c) else 1 for c in text)


# --- schema validation -----------------------------------------------------

def _prompt_length(validator, spec, instance, schema):  # noqa: ANN001 - jsonschema's keyword signature
    if not isinstance(instance, str):
        return
    units = prompt_units(instance, spec.get("cjk_weight", 2))
    limit = spec["max_units"]
    if units > limit:
        weight = spec.get("cjk_weight", 2)
        yield ValidationError(
            f"is {units} characters long, above the limit of {limit} "
            f"(a CJK character counts {weight})",
            validator="x-prompt-length",
            validator_value=spec,
            instance=instance,
            schema=schema,
        )


def _media_combinations(validator, combos, instance, schema):  # noqa: ANN001
    if not isinstance(instance, dict):
        return
    present = [f for f in MEDIA_FIELDS if f in instance]
    if sorted(present) in [sorted(c) for c in combos]:
        return
    allowed = "; ".join(" + ".join(c) for c in combos)
    got = " + ".join(present) if present else "no media"
    yield ValidationError(
        f"media {got} is not an allowed combination; use one of: {allowed}",
        validator="x-media-combinations",
        validator_value=combos,
        instance=instance,
        schema=schema,
    )


_Validator = validators.extend(
    Draft202012Validator,
    {"x-prompt-length": _prompt_length, "x-media-combinations": _media_combinations},
)

FORMAT_CHECKER = FormatChecker()


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def media_scheme(ref: str) -> str | None:
    """The URL scheme of a media reference, lower-cased, or None for a local path."""
    match = _SCHEME.match(ref)
    if match is None or len(match.group(1)) == 1:  # "C:\\..." is a Windows path
        return None
    return match.group(1).lower()


@FORMAT_CHECKER.checks("media-ref")
def _is_media_ref(value: object) -> bool:
    if not isinstance(value, str):
        return True
    scheme = media_scheme(value)
    return scheme is None or (scheme in ALLOWED_SCHEMES and "://" in value)


@cache
def load_schema(model: str) -> Mapping[str, Any]:
    """The JSON Schema of `model`. Raises UnknownModel."""
    if model not in MODEL_IDS:
        raise UnknownModel(model)
    with open(SCHEMA_DIR / f"{model}.json", encoding="utf-8") as fh:
        return json.load(fh)


@cache
def validator_for(model: str) -> jsonschema.protocols.Validator:
    """A validator for `model`'s schema with the runner's keywords and format checker."""
    return _Validator(load_schema(model), format_checker=FORMAT_CHECKER)


def iter_errors(fields: Mapping[str, Any]) -> Iterator[ValidationError]:
    """Every schema error of a job's fields (which must include `model`), in path order.

    Raises UnknownModel when `fields["model"]` is not a known model.
    """
    errors = validator_for(str(fields.get("model")) if "model" in fields else "")
    yield from sorted(errors.iter_errors(dict(fields)), key=lambda e: [str(p) for p in e.absolute_path])


@cache
def known_fields(model: str) -> tuple[str, ...]:
    return tuple(load_schema(model)["properties"])


@cache
def all_known_fields() -> frozenset[str]:
    return frozenset(f for m in MODEL_IDS for f in known_fields(m))


@cache
def _defaults(model: str) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v["default"]) for k, v in load_schema(model)["properties"].items() if "default" in v)


def defaults(model: str) -> dict[str, Any]:
    """The schema's default for every field of `model` that has one (a fresh dict each call)."""
    return dict(_defaults(model))


def media_limits(model: str, field: str) -> Mapping[str, Any] | None:
    """The `x-media` limits of a media field of `model`, or None."""
    prop = load_schema(model)["properties"].get(field)
    if prop is None:
        return None
    if prop.get("type") == "array":
        prop = prop.get("items", {})
    return prop.get("x-media")


def path_text(path: Iterable[str | int]) -> str:
    """A JSON path as text: ["reference_images", 1] -> "reference_images[1]"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def explain(error: ValidationError, model: str) -> tuple[str, str]:
    """(JSON path, plain sentence) for one schema error of a job of `model`."""
    path = path_text(error.absolute_path)
    what = path or "job"
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        extras = sorted(set(instance) - set(error.schema.get("properties", {})))
        sentences = [_extra_sentence(extra, model) for extra in extras]
        return (path_text([*error.absolute_path, extras[0]]) if extras else path, "; ".join(sentences))
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return (path_text([*error.absolute_path, missing]), f"{missing} is required by {model}")
    if kind == "maximum":
        return path, f"{what} {instance!r} is above the maximum {value}"
    if kind == "minimum":
        return path, f"{what} {instance!r} is below the minimum {value}"
    if kind == "enum":
        return path, f"{what} {instance!r} is not one of {', '.join(map(str, value))}"
    if kind == "const":
        return path, f"{what} must be {value!r}"
    if kind == "type":
        return path, f"{what} must be {'an' if str(value)[0] in 'aeiou' else 'a'} {value}, not {_json_type(instance)}"
    if kind == "maxItems":
        return path, f"{what} has {len(instance)} items, more than the maximum {value}"
    if kind == "minItems":
        return path, f"{what} has {len(instance)} items, fewer than the minimum {value}"
    if kind == "maxLength":
        return path, f"{what} is {len(instance)} characters long, above the limit of {value}"
    if kind == "minLength":
        return path, f"{what} must not be empty"
    if kind == "format" and value == "media-ref":
        return path, f"{what} {instance!r} is not an http, https or oss URL or a local path"
    if kind in ("x-prompt-length", "x-media-combinations"):
        return path, f"{what} {error.message}" if path else error.message
    return path, f"{what}: {error.message}"


def explain_each(error: ValidationError, model: str) -> list[tuple[list[str | int], str]]:
    """Like `explain`, but one (path parts, sentence) per problem: an error naming
    several unknown fields becomes one entry per field, each at its own path."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        extras = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extras:
            return [(_extra_path(error, extra), _extra_sentence(extra, model)) for extra in extras]
    path, sentence = explain(error, model)
    parts: list[str | int] = list(error.absolute_path)
    if error.validator == "required" and "'" in error.message:
        parts.append(error.message.split("'")[1])
    return [(parts, sentence)]


def _extra_path(error: ValidationError, extra: str) -> list[str | int]:
    return [*error.absolute_path, extra]


def _extra_sentence(extra: str, model: str) -> str:
    if extra in all_known_fields():
        return f"field '{extra}' is not supported by {model}"
    hint = difflib.get_close_matches(extra, known_fields(model), n=1)
    suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
    return f"unknown field '{extra}'{suffix}"


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


# --- API body --------------------------------------------------------------

def build_body(fields: Mapping[str, Any], *, with_defaults: bool = True) -> dict[str, Any]:
    """The create-task body for a job's fields (media already as URLs).

    Fields the schema gives a default for are filled in, so a request written
    with or without an explicit default yields the same body.
    """
    model = str(fields["model"])
    values = {**(defaults(model) if with_defaults else {}), **fields}
    body_input: dict[str, Any] = {}
    media: list[dict[str, str]] = []
    parameters: dict[str, Any] = {}
    for key, value in values.items():
        if key in JOB_FIELDS:
            continue
        if key in INPUT_FIELDS:
            body_input[key] = value
        elif key in SINGLE_MEDIA:
            media.append({"type": SINGLE_MEDIA[key], "url": value})
        elif key in LIST_MEDIA:
            media.extend({"type": LIST_MEDIA[key], "url": url} for url in value)
        else:
            parameters[key] = value
    media.sort(key=lambda m: MEDIA_ORDER.index(m["type"]))  # stable: keeps reference order
    if media:
        body_input["media"] = media
    return {"model": model, "input": body_input, "parameters": parameters}


#: the order media appear in a body: the input video first, then images, then audio
MEDIA_ORDER: tuple[str, ...] = ("video", "first_clip", "first_frame", "last_frame", "reference_image", "driving_audio")


@dataclass(frozen=True, slots=True)
class RequestProblem:
    """One reason a create body is refused: the API field it concerns and a sentence."""

    field: str
    message: str


def fields_from_body(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[RequestProblem]]:
    """The friendly fields of a create body, and the problems the mapping itself found.

    The inverse of `build_body`. Problems are shapes the friendly form cannot
    hold: a media entry without type or url, an unknown media type, a media
    type given twice.
    """
    problems: list[RequestProblem] = []
    fields: dict[str, Any] = {"model": body.get("model")}
    body_input = body.get("input")
    if not isinstance(body_input, Mapping):
        problems.append(RequestProblem("input", "input must be an object"))
        body_input = {}
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        problems.append(RequestProblem("parameters", "parameters must be an object"))
        parameters = {}
    for key, value in body_input.items():
        if key == "media":
            continue
        fields[key] = value
    media = body_input.get("media", [])
    if not isinstance(media, list):
        problems.append(RequestProblem("input.media", "input.media must be a list"))
        media = []
    for index, item in enumerate(media):
        where = f"input.media[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str) or "url" not in item:
            problems.append(RequestProblem(where, f"{where} must have a type and a url"))
            continue
        field = _MEDIA_TYPE_TO_FIELD.get(item["type"])
        if field is None:
            known = ", ".join(MEDIA_ORDER)
            problems.append(RequestProblem(f"{where}.type", f"{where}.type '{item['type']}' is not one of {known}"))
        elif field in LIST_MEDIA:
            fields.setdefault(field, []).append(item["url"])
        elif field in fields:
            problems.append(RequestProblem(f"{where}.type", f"media type '{item['type']}' appears more than once"))
        else:
            fields[field] = item["url"]
    for key, value in parameters.items():
        fields[key] = value
    return fields, problems


def api_field(friendly_path: str) -> str:
    """The API body path of a friendly field path (`duration` -> `parameters.duration`)."""
    head, _, rest = friendly_path.partition(".")
    head_name = head.split("[")[0]
    if head_name in INPUT_FIELDS:
        return f"input.{friendly_path}"
    if head_name in MEDIA_FIELDS:
        return f"input.media ({friendly_path})"
    if head_name in JOB_FIELDS or not head_name:
        return friendly_path or "body"
    return f"parameters.{friendly_path}"


def check_request(body: Mapping[str, Any]) -> list[RequestProblem]:
    """Every reason the API would refuse this create body, by the model's schema.

    Raises UnknownModel for a model id that does not exist. Media URLs are
    checked for scheme only; their content is the caller's business.
    """
    model = body.get("model")
    if model not in MODEL_IDS:
        raise UnknownModel(model)
    fields, problems = fields_from_body(body)
    for error in iter_errors(fields):
        path, sentence = explain(error, str(model))
        problems.append(RequestProblem(api_field(path), sentence))
    return problems
