"""Invalid manifests, table-driven: each one yields exactly the listed issues, at the listed lines."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

import runner._manifest as manifest_module
from runner._errors import ManifestError
from runner._manifest import load_manifest
from runner._models import media_limits
from runner._preflight import check_local_file

ASSETS = Path(__file__).resolve().parent.parent / "jobs" / "assets"

T2V = "happyhorse-1.0-t2v"
I2V = "happyhorse-1.0-i2v"
R2V = "happyhorse-1.0-r2v"
EDIT = "happyhorse-1.0-video-edit"
WAN = "wan2.7-i2v"


@dataclass
class Case:
    id: str
    manifest: str
    expected: list[str]
    files: dict[str, str] = field(default_factory=dict)


def head(jobs: str, top: str = "campaign: c\n") -> str:
    """A manifest: `top` lines, then `jobs:` and the (already indented) job lines."""
    return top + "jobs:\n" + jobs.strip("\n") + "\n"


def job(body: str) -> str:
    """One job's lines, indented under `jobs:` (line 3 is `- name: ...` with the default head)."""
    lines = textwrap.dedent(body).strip("\n").splitlines()
    return "\n".join(["  - " + lines[0], *("    " + line for line in lines[1:])])


LONG = "x" * 5001
CJK = "猫" * 2501

CASES: list[Case] = [
    # --- the file as a whole ---
    Case("empty file", "", ["m.yaml:1: the manifest is empty: it needs at least a campaign and jobs"]),
    Case("comments only", "# nothing\n", ["m.yaml:1: the manifest is empty: it needs at least a campaign and jobs"]),
    Case("top level is a list", "- a\n- b\n", ["m.yaml:1:1: the manifest must be a mapping (campaign:, jobs:, ...), not a list"]),
    Case("top level is text", "hello\n", ["m.yaml:1:1: the manifest must be a mapping (campaign:, jobs:, ...), not text"]),
    Case(
        "unclosed flow list",
        "campaign: c\njobs: [\n  {name: a\n",
        ["m.yaml:4:1: invalid YAML: did not find expected ',' or '}' (while parsing a flow mapping)"],
    ),
    Case(
        "bad indentation",
        "campaign: c\njobs:\n  - name: a\n   model: x\n",
        ["m.yaml:4:4: invalid YAML: did not find expected '-' indicator (while parsing a block collection)"],
    ),
    Case(
        "two documents",
        "campaign: c\n---\ncampaign: d\n",
        ["m.yaml:2:1: invalid YAML: but found another document (expected a single document in the stream)"],
    ),
    # --- YAML that is well formed but not plain data ---
    Case(
        "duplicate top-level key",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\ncampaign: d\n"),
        ["m.yaml:2:1: duplicate key 'campaign' (first given at line 1)"],
    ),
    Case(
        "duplicate key in a job",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p\nprompt: q")),
        ["m.yaml:6:5: duplicate key 'prompt' (first given at line 5)"],
    ),
    Case(
        "python object tag",
        head(job(f"name: a\nmodel: {T2V}\nprompt: !!python/object/apply:os.system [ls]")),
        [
            "m.yaml:5:13: YAML tag '!!python/object/apply:os.system' is not allowed: a manifest holds plain data "
            "only (strings, numbers, booleans, lists and mappings)",
        ],
    ),
    Case(
        "python name tag on a scalar",
        head(job(f"name: a\nmodel: {T2V}\nprompt: !!python/name:os.system ''")),
        [
            "m.yaml:5:13: YAML tag '!!python/name:os.system' is not allowed: a manifest holds plain data only "
            "(strings, numbers, booleans, lists and mappings)",
        ],
    ),
    Case(
        "custom tag",
        head(job(f"name: a\nmodel: {T2V}\nprompt: !include other.txt")),
        [
            "m.yaml:5:13: YAML tag '!include' is not allowed: a manifest holds plain data only "
            "(strings, numbers, booleans, lists and mappings)",
        ],
    ),
    # --- the manifest's own keys ---
    Case("campaign missing", head(job(f"name: a\nmodel: {T2V}\nprompt: p"), ""), ["m.yaml:1:1: campaign is required in the manifest"]),
    Case(
        "unknown top-level key with a hint",
        "campaign: c\njbos:\n  - name: a\n",
        [
            "m.yaml:1:1: the manifest has no jobs: add a jobs list or jobs_from",
            "m.yaml:2:1: unknown key 'jbos' (did you mean 'jobs'?)",
        ],
    ),
    Case("campaign with ..", head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: a..b\n"), ["m.yaml:1:1: campaign name 'a..b' contains '..'"]),
    Case(
        "campaign with a slash",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: ../evil\n"),
        ["m.yaml:1:1: campaign name '../evil' contains a path separator"],
    ),
    Case(
        "campaign with a leading dot",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: .hidden\n"),
        ["m.yaml:1:1: campaign name '.hidden' starts with '.'"],
    ),
    Case(
        "campaign too long",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: " + "c" * 101 + "\n"),
        [f"m.yaml:1:1: campaign name '{'c' * 101}' is 101 characters long, more than 100"],
    ),
    Case(
        "campaign is a number",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: 42\n"),
        ["m.yaml:1:1: campaign must be text, not a number"],
    ),
    Case(
        "unknown region",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\nregion: shanghai\n"),
        ["m.yaml:2:1: region 'shanghai' is not one of beijing, singapore"],
    ),
    Case(
        "region and base_url together",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\nregion: beijing\nbase_url: http://127.0.0.1:1/api/v1\n"),
        ["m.yaml:3:1: give region or base_url, not both"],
    ),
    Case(
        "base_url with an ftp scheme",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\nbase_url: ftp://example.com/api\n"),
        ["m.yaml:2:1: base_url 'ftp://example.com/api' must be an http or https URL"],
    ),
    Case(
        "submit_rps zero",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\nlimits:\n  submit_rps: 0\n"),
        ["m.yaml:3:3: limits.submit_rps 0 must be more than 0"],
    ),
    Case(
        "unknown limit with a hint",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\nlimits:\n  submit_rate: 3\n"),
        ["m.yaml:3:3: unknown key 'submit_rate' in limits (did you mean 'submit_rps'?)"],
    ),
    Case(
        "max_in_flight not a number",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\nlimits:\n  max_in_flight: many\n"),
        ["m.yaml:3:3: limits.max_in_flight must be a whole number, not text"],
    ),
    Case("no jobs at all", "campaign: c\n", ["m.yaml:1:1: the manifest has no jobs: add a jobs list or jobs_from"]),
    Case("jobs is a mapping", "campaign: c\njobs:\n  a: 1\n", ["m.yaml:2:1: jobs must be a list, not a mapping"]),
    Case("a job is text", "campaign: c\njobs:\n  - just text\n", ["m.yaml:3:5: jobs[0] must be a mapping, not text"]),
    # --- names ---
    Case("job without a name", head(job(f"model: {T2V}\nprompt: p")), ["m.yaml:3:5: the job has no name; every job needs a unique name"]),
    Case(
        "job name with a space",
        head(job(f"name: my shot\nmodel: {T2V}\nprompt: p")),
        [f"m.yaml:3:5: job 'my shot' ({T2V}): job name 'my shot' contains ' '; use letters, digits, '.', '_' and '-'"],
    ),
    Case(
        "job name with a control character",
        head(job(f'name: "a\\x01b"\nmodel: {T2V}\nprompt: p')),
        [f"m.yaml:3:5: job 'a\x01b' ({T2V}): job name 'a\\x01b' contains a control character"],
    ),
    Case(
        "job name that is ..",
        head(job(f'name: ".."\nmodel: {T2V}\nprompt: p')),
        [f"m.yaml:3:5: job '..' ({T2V}): job name '..' starts with '.'"],
    ),
    Case(
        "job name that is a device name",
        head(job(f"name: con\nmodel: {T2V}\nprompt: p")),
        [f"m.yaml:3:5: job 'con' ({T2V}): job name 'con' is a reserved device name on Windows"],
    ),
    Case(
        "duplicate job names",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p") + "\n" + job(f"name: a\nmodel: {T2V}\nprompt: q")),
        [f"m.yaml:6:5: job 'a' ({T2V}): duplicate job name 'a' (first used at m.yaml:3)"],
    ),
    # --- models and their fields ---
    Case("model missing", head(job("name: a\nprompt: p")), [
        "m.yaml:3:5: job 'a': model is missing: give it in the job or in defaults (one of happyhorse-1.0-t2v, "
        "happyhorse-1.0-i2v, happyhorse-1.0-r2v, happyhorse-1.0-video-edit, wan2.7-i2v)"
    ]),
    Case("unknown model with a hint", head(job("name: a\nmodel: happyhorse-1.0-t2w\nprompt: p")), [
        "m.yaml:4:5: job 'a' (happyhorse-1.0-t2w): unknown model 'happyhorse-1.0-t2w' (did you mean "
        "'happyhorse-1.0-t2v'?); known models: happyhorse-1.0-t2v, happyhorse-1.0-i2v, happyhorse-1.0-r2v, "
        "happyhorse-1.0-video-edit, wan2.7-i2v"
    ]),
    Case(
        "duration above the maximum",
        head(job(f"name: portrait-turn\nmodel: {I2V}\nfirst_frame: assets/portrait.png\nduration: 20")),
        [f"m.yaml:6:5: job 'portrait-turn' ({I2V}): duration 20 is above the maximum 15"],
    ),
    Case(
        "duration below the minimum",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p\nduration: 2")),
        [f"m.yaml:6:5: job 'a' ({T2V}): duration 2 is below the minimum 3"],
    ),
    Case(
        "duration as text",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p\nduration: five")),
        [f"m.yaml:6:5: job 'a' ({T2V}): duration must be an integer, not a string"],
    ),
    Case(
        "negative seed",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p\nseed: -1")),
        [f"m.yaml:6:5: job 'a' ({T2V}): seed -1 is below the minimum 0"],
    ),
    Case(
        "resolution not in the list",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p\nresolution: 4K")),
        [f"m.yaml:6:5: job 'a' ({T2V}): resolution '4K' is not one of 720P, 1080P"],
    ),
    Case(
        "watermark not a boolean",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p\nwatermark: maybe")),
        [f"m.yaml:6:5: job 'a' ({T2V}): watermark must be a boolean, not a string"],
    ),
    Case(
        "unknown field with a hint",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p\ndurration: 5")),
        [f"m.yaml:6:5: job 'a' ({T2V}): unknown field 'durration' (did you mean 'duration'?)"],
    ),
    Case(
        "two unknown fields, one line each",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p\nsed: 1\nresolutoin: 720P")),
        [
            f"m.yaml:6:5: job 'a' ({T2V}): unknown field 'sed' (did you mean 'seed'?)",
            f"m.yaml:7:5: job 'a' ({T2V}): unknown field 'resolutoin' (did you mean 'resolution'?)",
        ],
    ),
    Case(
        "field another model takes",
        head(job(f"name: a\nmodel: {I2V}\nfirst_frame: assets/portrait.png\nratio: '16:9'")),
        [f"m.yaml:6:5: job 'a' ({I2V}): field 'ratio' is not supported by {I2V}"],
    ),
    Case(
        "prompt missing",
        head(job(f"name: a\nmodel: {T2V}\nduration: 5")),
        [f"m.yaml:3:5: job 'a' ({T2V}): prompt is required by {T2V}"],
    ),
    Case(
        "prompt over the length limit",
        head(job(f"name: a\nmodel: {T2V}\nprompt: {LONG}")),
        [f"m.yaml:5:5: job 'a' ({T2V}): prompt is 5001 characters long, above the limit of 5000 (a CJK character counts 2)"],
    ),
    Case(
        "CJK prompt over the length limit",
        head(job(f"name: a\nmodel: {T2V}\nprompt: {CJK}")),
        [f"m.yaml:5:5: job 'a' ({T2V}): prompt is 5002 characters long, above the limit of 5000 (a CJK character counts 2)"],
    ),
    Case(
        "negative prompt too long",
        head(job(f"name: a\nmodel: {WAN}\nfirst_frame: assets/wan-first.png\nnegative_prompt: {'n' * 501}")),
        [f"m.yaml:6:5: job 'a' ({WAN}): negative_prompt is 501 characters long, above the limit of 500"],
    ),
    # --- media ---
    Case(
        "file URL",
        head(job(f"name: a\nmodel: {I2V}\nfirst_frame: file:///etc/passwd")),
        [f"m.yaml:5:5: job 'a' ({I2V}): first_frame 'file:///etc/passwd' is not an http, https or oss URL or a local path"],
    ),
    Case(
        "ftp URL in a list",
        head(job(f"name: a\nmodel: {R2V}\nprompt: p\nreference_images:\n  - assets/ref-hero.png\n  - ftp://x/y.png")),
        [f"m.yaml:8:9: job 'a' ({R2V}): reference_images[1] 'ftp://x/y.png' is not an http, https or oss URL or a local path"],
    ),
    Case(
        "missing local file",
        head(job(f"name: a\nmodel: {I2V}\nfirst_frame: assets/nope.png")),
        [f"m.yaml:5:5: job 'a' ({I2V}): first_frame file 'assets/nope.png' does not exist (looked for {{tmp}}/assets/nope.png)"],
    ),
    Case(
        "missing second reference image",
        head(job(f"name: a\nmodel: {R2V}\nprompt: p\nreference_images:\n  - assets/ref-hero.png\n  - assets/gone.jpg")),
        [f"m.yaml:8:9: job 'a' ({R2V}): reference_images[1] file 'assets/gone.jpg' does not exist (looked for {{tmp}}/assets/gone.jpg)"],
    ),
    Case(
        "too many reference images",
        head(job(f"name: a\nmodel: {R2V}\nprompt: p\nreference_images: [" + ", ".join(["assets/ref-hero.png"] * 10) + "]")),
        [f"m.yaml:6:5: job 'a' ({R2V}): reference_images has 10 items, more than the maximum 9"],
    ),
    Case(
        "media combination wan2.7 does not take",
        head(job(f"name: a\nmodel: {WAN}\nfirst_frame: assets/wan-first.png\nfirst_clip: assets/continue.mp4")),
        [
            f"m.yaml:3:5: job 'a' ({WAN}): media first_frame + first_clip is not an allowed combination; use one of: "
            "first_frame; first_frame + last_frame; first_clip; first_frame + driving_audio"
        ],
    ),
    Case(
        "video-edit without a video",
        head(job(f"name: a\nmodel: {EDIT}\nprompt: p")),
        [f"m.yaml:3:5: job 'a' ({EDIT}): video is required by {EDIT}"],
    ),
    Case(
        "image too small for the model",
        head(job(f"name: a\nmodel: {I2V}\nfirst_frame: tiny.png")),
        ["m.yaml:5:5: job 'a' (happyhorse-1.0-i2v): first_frame 'tiny.png': {tiny}"],
    ),
    # --- defaults and matrices ---
    Case(
        "typo in defaults, reported once at the defaults line",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p") + "\n" + job(f"name: b\nmodel: {T2V}\nprompt: q"),
             "campaign: c\ndefaults:\n  resolutin: 720P\n"),
        [f"m.yaml:3:3: job 'a' ({T2V}) and 1 more job: unknown field 'resolutin' (did you mean 'resolution'?)"],
    ),
    Case(
        "bad default value",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\ndefaults:\n  duration: 99\n"),
        [f"m.yaml:3:3: job 'a' ({T2V}): duration 99 is above the maximum 15"],
    ),
    Case(
        "name in defaults",
        head(job(f"name: a\nmodel: {T2V}\nprompt: p"), "campaign: c\ndefaults:\n  name: x\n"),
        ["m.yaml:3:3: 'name' cannot be a default: give each job its own"],
    ),
    Case(
        "unknown placeholder in a matrix prompt",
        head(job(f"name: s\nmodel: {T2V}\nprompt: a {{colour}} cat\nmatrix:\n  seed: [1, 2]")),
        ["m.yaml:5:5: job 's': prompt uses {colour}, which is not a matrix variable (the matrix has: seed)"],
    ),
    Case(
        "empty matrix list",
        head(job(f"name: s\nmodel: {T2V}\nprompt: p\nmatrix:\n  seed: []")),
        ["m.yaml:7:7: job 's': jobs[0].matrix.seed has 0 items, fewer than the minimum 1"],
    ),
    Case(
        "matrix variable set twice",
        head(job(f"name: s\nmodel: {T2V}\nprompt: p\nseed: 3\nmatrix:\n  seed: [1, 2]")),
        ["m.yaml:8:7: job 's': 'seed' is set both by the job and by its matrix; keep one"],
    ),
    Case(
        "matrix variable that is not an identifier",
        head(job(f"name: s\nmodel: {T2V}\nprompt: p\nmatrix:\n  my-var: [1, 2]")),
        ["m.yaml:7:7: job 's': matrix variable 'my-var' must be an identifier (letters, digits and '_', not starting with a digit)"],
    ),
    Case(
        "matrix value out of range, once for all its jobs",
        head(job(f"name: s-{{seed}}\nmodel: {T2V}\nprompt: p\nmatrix:\n  seed: [1, -5]\n  duration: [3, 20]")),
        [
            f"m.yaml:7:17: job 's--5-3' ({T2V}) and 1 more job: seed -5 is below the minimum 0",
            f"m.yaml:8:21: job 's-1-20' ({T2V}) and 1 more job: duration 20 is above the maximum 15",
        ],
    ),
    Case(
        "two matrices with the same names",
        head(job(f"name: s-{{seed}}\nmodel: {T2V}\nprompt: p\nmatrix:\n  seed: [1]") + "\n"
             + job(f"name: s-{{seed}}\nmodel: {T2V}\nprompt: q\nmatrix:\n  seed: [1]")),
        [f"m.yaml:8:5: job 's-1' ({T2V}): duplicate job name 's-1' (first used at m.yaml:3)"],
    ),
    # --- jobs from CSV and JSONL files ---
    Case(
        "CSV row with a bad duration",
        "campaign: c\njobs_from: rows.csv\n",
        [f"rows.csv:3:4: job 'b' ({T2V}): duration 30 is above the maximum 15"],
        {"rows.csv": f"name,model,prompt,duration\na,{T2V},p,5\nb,{T2V},q,30\n"},
    ),
    Case(
        "CSV row longer than its header",
        "campaign: c\njobs_from: rows.csv\n",
        ["rows.csv:3:4: the row has 4 cells but the header names 3"],
        {"rows.csv": f"name,model,prompt\na,{T2V},p\nb,{T2V},q,extra\n"},
    ),
    Case(
        "CSV unknown column",
        "campaign: c\njobs_from: rows.csv\n",
        [f"rows.csv:2:4: job 'a' ({T2V}): unknown field 'seeed' (did you mean 'seed'?)"],
        {"rows.csv": f"name,model,prompt,seeed\na,{T2V},p,1\n"},
    ),
    Case(
        "JSONL line that is not JSON",
        "campaign: c\njobs:\n  - from: rows.jsonl\n",
        ["rows.jsonl:2:14: invalid JSON: Expecting ',' delimiter"],
        {"rows.jsonl": f'{{"name": "a", "model": "{T2V}", "prompt": "p"}}\n{{"name": "b" "model": 1}}\n'},
    ),
    Case(
        "JSONL key given twice",
        "campaign: c\njobs:\n  - from: rows.jsonl\n",
        ["rows.jsonl:1:16: duplicate key 'name'"],
        {"rows.jsonl": '{"name": "a",  "name" : "b"}\n'},
    ),
    Case(
        "JSONL line that is a list",
        "campaign: c\njobs:\n  - from: rows.jsonl\n",
        ["rows.jsonl:1:1: each line must be a JSON object, one job per line"],
        {"rows.jsonl": "[1, 2]\n"},
    ),
    Case(
        "JSONL field error at its column",
        "campaign: c\njobs:\n  - from: rows.jsonl\n    defaults:\n      model: " + T2V + "\n",
        [f"rows.jsonl:2:30: job 'b' ({T2V}): seed must be an integer, not a string"],
        {"rows.jsonl": '{"name": "a", "prompt": "p"}\n\n{"name": "b", "prompt": "q", "seed": "x"}\n'.replace("\n\n", "\n")},
    ),
    Case(
        "jobs file missing",
        "campaign: c\njobs_from: rows.csv\n",
        ["m.yaml:2:1: jobs file 'rows.csv' does not exist"],
    ),
    Case(
        "jobs file of an unknown kind",
        "campaign: c\njobs_from: rows.xlsx\n",
        ["m.yaml:2:1: jobs file 'rows.xlsx' must end in .csv or .jsonl"],
    ),
    Case(
        "jobs file given as a URL",
        "campaign: c\njobs_from: https://example.com/rows.csv\n",
        ["m.yaml:2:1: jobs file 'https://example.com/rows.csv' must be a local file, not a URL"],
    ),
    Case(
        "from entry with a stray key",
        "campaign: c\njobs:\n  - from: rows.csv\n    model: " + T2V + "\n",
        ["m.yaml:4:5: a 'from' entry takes only from and defaults; put 'model' under its defaults"],
        {"rows.csv": "name,prompt\na,p\n"},
    ),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary project: the demo assets under assets/, the current directory set to it."""
    shutil.copytree(ASSETS, tmp_path / "assets")
    Image.new("RGB", (100, 100), "white").save(tmp_path / "tiny.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _issues(path: str = "m.yaml") -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_manifest_reports_exact_issues(case: Case, workdir: Path) -> None:
    """Each invalid manifest yields exactly its expected issues, with file, line and column."""
    (workdir / "m.yaml").write_text(case.manifest, encoding="utf-8")
    for name, text in case.files.items():
        (workdir / name).write_text(text, encoding="utf-8")
    tiny = "; ".join(check_local_file(workdir / "tiny.png", media_limits(I2V, "first_frame") or {}))
    expected = [e.replace("{tmp}", str(workdir)).replace("{tiny}", tiny) for e in case.expected]
    assert _issues() == expected


def test_there_are_at_least_forty_cases() -> None:
    """The table keeps at least 40 distinct invalid manifests."""
    assert len({c.id for c in CASES}) == len(CASES) >= 40


def test_tiny_image_case_really_breaks_a_limit(workdir: Path) -> None:
    """The pre-flight finds something wrong with the 100x100 image the table relies on."""
    assert check_local_file(workdir / "tiny.png", media_limits(I2V, "first_frame") or {})


def test_not_utf8_reports_the_line(workdir: Path) -> None:
    """A manifest that is not UTF-8 is one issue at the line of the first bad byte."""
    (workdir / "m.yaml").write_bytes(b"campaign: c\njobs:\n  - name: \xff\n")
    assert _issues() == ["m.yaml:3: the manifest is not UTF-8 text (byte 28 cannot be decoded)"]


def test_oversized_manifest_is_refused_before_reading(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest above the size cap is one clear issue, not a slow parse."""
    monkeypatch.setattr(manifest_module, "MAX_MANIFEST_BYTES", 1024 * 1024)
    (workdir / "m.yaml").write_text("campaign: c\n" + "#" * (2 * 1024 * 1024), encoding="utf-8")
    assert _issues() == ["m.yaml: the manifest is 2.0 MB, above the limit of 1 MB; split it into several files"]


def test_missing_manifest_is_one_issue(workdir: Path) -> None:
    """A manifest path that does not exist is reported as such."""
    assert _issues("absent.yaml") == ["absent.yaml: the manifest 'absent.yaml' does not exist"]


def test_billion_laughs_stays_small(workdir: Path) -> None:
    """Nested aliases that would expand to a billion values are one clear issue, found at once."""
    lines = ["campaign: c", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"x-a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    lines[1] = "x-" + lines[1]
    lines += ["jobs:", f"  - name: a\n    model: {R2V}\n    prompt: p\n    reference_images: *a8"]
    (workdir / "m.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _issues() == ["m.yaml:5:7: the value anchored here is repeated by aliases (*name) into more than 100000 values"]
