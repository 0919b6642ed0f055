"""Valid manifests: what `load_manifest` returns, and the `validate` command."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

import runner._manifest as manifest_module
from runner import _validate_cli
from runner._manifest import REGIONS, Limits, load_manifest
from runner._models import MODEL_IDS, build_body

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "jobs" / "assets"
T2V = "happyhorse-1.0-t2v"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary project with the demo assets under assets/, as the current directory."""
    shutil.copytree(ASSETS, tmp_path / "assets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_campaign_uses_every_model_a_matrix_and_defaults() -> None:
    """jobs/campaign.yaml validates, covers all five models, and stays a quick demo."""
    m = load_manifest(ROOT / "jobs" / "campaign.yaml")
    assert {job.model for job in m.jobs} == set(MODEL_IDS)
    assert 10 <= len(m.jobs) <= 16
    assert all(job.billable_seconds is not None and 3 <= job.billable_seconds <= 5 for job in m.jobs)
    assert [j.name for j in m.jobs if j.model == T2V] == [
        "skyline-noir-s7", "skyline-pastel-s7", "skyline-noir-s42", "skyline-pastel-s42",
    ]
    local_models = {job.model for job in m.jobs if job.local_media}
    assert local_models == set(MODEL_IDS) - {T2V}
    assert all(path.is_file() for job in m.jobs for path in job.local_media.values())


@pytest.mark.parametrize("path", sorted((ROOT / "jobs" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_manifests_validate(path: Path) -> None:
    """Every example manifest loads without issues."""
    m = load_manifest(path)
    assert m.jobs


def test_there_is_one_example_per_model() -> None:
    """jobs/examples has a manifest for each model, named after it."""
    names = {p.stem for p in (ROOT / "jobs" / "examples").glob("*.yaml")}
    assert names == set(MODEL_IDS)
    for model in MODEL_IDS:
        assert {j.model for j in load_manifest(ROOT / "jobs" / "examples" / f"{model}.yaml").jobs} == {model}


def test_top_level_defaults_and_resolution(workdir: Path) -> None:
    """Omitted settings take their documented defaults; output_dir is output/<campaign> under the cwd."""
    m = load_manifest(write(workdir / "m.yaml", f"campaign: c\njobs:\n  - name: a\n    model: {T2V}\n    prompt: p\n"))
    assert m.campaign == "c"
    assert m.limits == Limits(submit_rps=5, query_rps=20, max_in_flight=50, poll_interval=15, max_attempts=3)
    assert m.base_url == "https://dashscope.aliyuncs.com/api/v1"
    assert m.output_dir == workdir / "output" / "c"
    assert m.path == workdir / "m.yaml" or m.path == Path("m.yaml") or m.path.name == "m.yaml"


def test_region_base_url_limits_and_output_dir(workdir: Path) -> None:
    """region picks the endpoint; base_url loses its trailing slash; limits and output_dir are read."""
    job = f"jobs:\n  - name: a\n    model: {T2V}\n    prompt: p\n"
    assert load_manifest(write(workdir / "s.yaml", "campaign: c\nregion: singapore\n" + job)).base_url == REGIONS["singapore"]
    m = load_manifest(
        write(
            workdir / "b.yaml",
            "campaign: c\nbase_url: http://127.0.0.1:8000/api/v1/\noutput_dir: out/here\n"
            "limits: {submit_rps: 2.5, max_in_flight: 7}\n" + job,
        )
    )
    assert m.base_url == "http://127.0.0.1:8000/api/v1"
    assert m.limits == Limits(submit_rps=2.5, max_in_flight=7)
    assert m.output_dir == workdir / "out" / "here"


def test_unquoted_aspect_ratio_stays_text(workdir: Path) -> None:
    """`ratio: 16:9` is the text 16:9, not YAML 1.1's base-60 number 969."""
    m = load_manifest(write(workdir / "m.yaml", f"campaign: c\njobs:\n  - name: a\n    model: {T2V}\n    prompt: p\n    ratio: 16:9\n"))
    assert m.jobs[0].fields["ratio"] == "16:9"


def test_job_fields_body_and_media(workdir: Path) -> None:
    """fields hold model and media as written; local_media maps field paths to absolute files."""
    m = load_manifest(
        write(
            workdir / "m.yaml",
            "campaign: c\njobs:\n  - name: r\n    model: happyhorse-1.0-r2v\n    prompt: character1 waves\n"
            "    reference_images: [assets/ref-hero.png, https://example.com/x.png, assets/ref-prop.jpg]\n",
        )
    )
    job = m.jobs[0]
    assert job.fields["reference_images"] == ["assets/ref-hero.png", "https://example.com/x.png", "assets/ref-prop.jpg"]
    assert job.fields["model"] == "happyhorse-1.0-r2v" and "name" not in job.fields
    assert job.local_media == {
        "reference_images[0]": workdir / "assets" / "ref-hero.png",
        "reference_images[2]": workdir / "assets" / "ref-prop.jpg",
    }
    assert job.body == build_body(job.fields)
    assert job.body["parameters"]["duration"] == 5  # the schema default is filled in
    assert job.line == 3 and job.billable_seconds == 5


def test_media_paths_are_relative_to_the_manifest_not_the_cwd(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest in a sub-folder finds its media next to itself, wherever it is run from."""
    sub = workdir / "camp"
    sub.mkdir()
    write(sub / "m.yaml", "campaign: c\njobs:\n  - name: a\n    model: happyhorse-1.0-i2v\n    first_frame: ../assets/portrait.png\n")
    monkeypatch.chdir(sub)
    assert load_manifest("m.yaml").jobs[0].local_media["first_frame"] == workdir / "assets" / "portrait.png"


def test_key_ignores_written_defaults_and_rereads(workdir: Path) -> None:
    """`duration: 5` and an omitted duration give the same key; other changes do not."""
    base = f"campaign: c\njobs:\n  - name: a\n    model: {T2V}\n    prompt: p\n"
    k1 = load_manifest(write(workdir / "a.yaml", base)).jobs[0].key
    k2 = load_manifest(write(workdir / "b.yaml", base + "    duration: 5\n")).jobs[0].key
    k3 = load_manifest(write(workdir / "c.yaml", base + "    duration: 6\n")).jobs[0].key
    k4 = load_manifest(write(workdir / "d.yaml", base.replace("campaign: c", "campaign: d"))).jobs[0].key
    assert k1 == k2 and len(k1) >= 20
    assert len({k1, k3, k4}) == 3
    assert load_manifest(workdir / "a.yaml").jobs[0].key == k1


def test_defaults_merge_under_jobs_and_skip_models_that_do_not_take_them(workdir: Path) -> None:
    """A job's own field beats the default; a default the model lacks (duration for video-edit) is left out."""
    m = load_manifest(
        write(
            workdir / "m.yaml",
            "campaign: c\ndefaults:\n  resolution: 720P\n  duration: 4\njobs:\n"
            f"  - name: a\n    model: {T2V}\n    prompt: p\n    resolution: 1080P\n"
            "  - name: e\n    model: happyhorse-1.0-video-edit\n    prompt: p\n    video: assets/edit-input.mp4\n",
        )
    )
    a, e = m.jobs
    assert a.fields["resolution"] == "1080P" and a.fields["duration"] == 4
    assert e.fields["resolution"] == "720P" and "duration" not in e.fields
    assert e.billable_seconds == 4  # follows the 4 s input video


def test_video_edit_with_remote_video_has_unknown_seconds(workdir: Path) -> None:
    """Billable seconds are None when they follow a video that is not read."""
    m = load_manifest(
        write(workdir / "m.yaml", "campaign: c\njobs:\n  - name: e\n    model: happyhorse-1.0-video-edit\n"
              "    prompt: p\n    video: https://example.com/in.mp4\n")
    )
    assert m.jobs[0].billable_seconds is None
    assert m.billable_seconds() == (0, 1)


def test_matrix_sets_fields_keeps_types_and_fills_every_text(workdir: Path) -> None:
    """Matrix variables named like fields set them (as ints); {var} fills prompt, name and media paths."""
    m = load_manifest(
        write(
            workdir / "m.yaml",
            "campaign: c\njobs:\n  - name: shot-{pic}\n    model: happyhorse-1.0-i2v\n"
            "    first_frame: assets/{pic}.png\n    prompt: '{pic} at {duration} s'\n"
            "    matrix:\n      pic: [portrait, ref-hero]\n      duration: [3, 4]\n",
        )
    )
    assert [(j.name, j.fields["duration"], j.fields["prompt"]) for j in m.jobs] == [
        ("shot-portrait-3", 3, "portrait at 3 s"),
        ("shot-portrait-4", 4, "portrait at 4 s"),
        ("shot-ref-hero-3", 3, "ref-hero at 3 s"),
        ("shot-ref-hero-4", 4, "ref-hero at 4 s"),
    ]
    assert m.jobs[2].local_media["first_frame"] == workdir / "assets" / "ref-hero.png"


def test_csv_and_jsonl_rows_with_their_defaults(workdir: Path) -> None:
    """Rows become jobs after the YAML jobs; cells are typed by the schema; `from` defaults apply."""
    write(workdir / "rows.csv", f"name,model,prompt,duration,watermark,seed\nc1,{T2V},\"a, b\",4,no,\nc2,{T2V},q,,true,9\n")
    write(workdir / "rows.jsonl", '{"name": "j1", "prompt": "x", "reference_images": ["assets/ref-hero.png"]}\n\n')
    write(
        workdir / "m.yaml",
        f"campaign: c\njobs_from: rows.csv\njobs:\n  - name: y\n    model: {T2V}\n    prompt: p\n"
        "  - from: rows.jsonl\n    defaults: {model: happyhorse-1.0-r2v, ratio: '1:1'}\n",
    )
    m = load_manifest("m.yaml")
    assert [j.name for j in m.jobs] == ["y", "j1", "c1", "c2"]
    by_name = {j.name: j for j in m.jobs}
    assert by_name["c1"].fields == {"model": T2V, "prompt": "a, b", "duration": 4, "watermark": False}
    assert by_name["c2"].fields == {"model": T2V, "prompt": "q", "watermark": True, "seed": 9}
    assert (by_name["c1"].source, by_name["c1"].line, by_name["c2"].line) == ("rows.csv", 2, 3)
    assert by_name["j1"].fields["ratio"] == "1:1" and by_name["j1"].local_media
    assert by_name["j1"].source == "rows.jsonl"


def test_jsonl_lines_end_only_at_a_newline(workdir: Path) -> None:
    """A JSONL text may hold U+2028 or U+0085 raw inside a string, and CRLF line ends; each line is one job."""
    rows = [{"name": "a", "model": T2V, "prompt": "one\u2028two\x85three"}, {"name": "b", "model": T2V, "prompt": "q"}]
    (workdir / "rows.jsonl").write_bytes("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8"))
    m = load_manifest(write(workdir / "m.yaml", "campaign: c\njobs_from: rows.jsonl\n"))
    assert [(j.name, j.fields["prompt"], j.line) for j in m.jobs] == [("a", rows[0]["prompt"], 1), ("b", "q", 2)]


def test_csv_list_cells(workdir: Path) -> None:
    """A list cell is a JSON list or references separated by '|'."""
    write(workdir / "rows.csv", 'name,prompt,reference_images\na,p,assets/ref-hero.png | assets/ref-prop.jpg\n'
                                'b,p,"[""assets/ref-prop.jpg""]"\n')
    m = load_manifest(write(workdir / "m.yaml", "campaign: c\ndefaults: {model: happyhorse-1.0-r2v}\njobs_from: [rows.csv]\n"))
    assert [j.fields["reference_images"] for j in m.jobs] == [
        ["assets/ref-hero.png", "assets/ref-prop.jpg"], ["assets/ref-prop.jpg"],
    ]


def test_yaml_merge_keys_and_x_keys(workdir: Path) -> None:
    """`<<: *anchor` merges work, an explicit key beats a merged one, and x- keys may hold anchors."""
    m = load_manifest(
        write(
            workdir / "m.yaml",
            f"campaign: c\nx-base: &base {{model: {T2V}, duration: 4}}\njobs:\n"
            "  - name: a\n    <<: *base\n    duration: 6\n    prompt: p\n",
        )
    )
    assert m.jobs[0].fields == {"model": T2V, "duration": 6, "prompt": "p"}


def test_preflight_runs_once_per_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file shared by many jobs is checked by the pre-flight once; check_media=False skips it."""
    calls: list[Path] = []
    monkeypatch.setattr(manifest_module._preflight, "check_local_file", lambda path, limits: calls.append(path) or [])
    text = ("campaign: c\njobs:\n  - name: a\n    model: happyhorse-1.0-i2v\n    first_frame: assets/portrait.png\n"
            "    matrix: {seed: [1, 2, 3, 4]}\n")
    assert len(load_manifest(write(workdir / "m.yaml", text)).jobs) == 4
    assert calls == [workdir / "assets" / "portrait.png"]
    calls.clear()
    load_manifest(workdir / "m.yaml", check_media=False)
    assert calls == []


def test_check_media_false_does_not_require_files(workdir: Path) -> None:
    """Without media checks a missing file is not an issue, but its path is still resolved."""
    text = "campaign: c\njobs:\n  - name: a\n    model: happyhorse-1.0-i2v\n    first_frame: gone.png\n"
    job = load_manifest(write(workdir / "m.yaml", text), check_media=False).jobs[0]
    assert job.local_media == {"first_frame": workdir / "gone.png"}


def test_preflight_sentences_become_issues_at_the_field(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sentence the pre-flight returns is an issue at the media field's line."""
    monkeypatch.setattr(manifest_module._preflight, "check_local_file", lambda path, limits: ["is too dark", "is upside down"])
    text = "campaign: c\njobs:\n  - name: a\n    model: happyhorse-1.0-i2v\n    first_frame: assets/portrait.png\n"
    write(workdir / "m.yaml", text)
    with pytest.raises(manifest_module.ManifestError) as caught:
        load_manifest("m.yaml")
    assert [str(i) for i in caught.value.issues] == [
        "m.yaml:5:5: job 'a' (happyhorse-1.0-i2v): first_frame 'assets/portrait.png': is too dark",
        "m.yaml:5:5: job 'a' (happyhorse-1.0-i2v): first_frame 'assets/portrait.png': is upside down",
    ]


def test_issue_exposes_its_parts(workdir: Path) -> None:
    """An issue carries file, line, column, job, model and JSON path, and formats as one line."""
    text = "campaign: c\njobs:\n  - name: portrait-turn\n    model: happyhorse-1.0-i2v\n    first_frame: assets/portrait.png\n    duration: 20\n"
    write(workdir / "jobs.yaml", text)
    with pytest.raises(manifest_module.ManifestError) as caught:
        load_manifest("jobs.yaml")
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.column, issue.job, issue.model, issue.path) == (
        "jobs.yaml", 6, 5, "portrait-turn", "happyhorse-1.0-i2v", "duration",
    )
    assert str(issue) == "jobs.yaml:6:5: job 'portrait-turn' (happyhorse-1.0-i2v): duration 20 is above the maximum 15"
    assert caught.value.exit_code == 2


# --- the validate command ----------------------------------------------------

def run_validate(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    _validate_cli.configure(parser)
    return _validate_cli.main(parser.parse_args(list(argv)))


def test_validate_prints_the_plan_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """`validate` on the demo prints jobs and seconds per model, and exits 0."""
    assert run_validate(str(ROOT / "jobs" / "campaign.yaml")) == 0
    out = capsys.readouterr().out
    assert out.startswith("campaign demo: 12 jobs, 40 billable seconds\n")
    assert "  happyhorse-1.0-t2v                4          12\n" in out
    assert "skyline-noir-s7" in out


def test_validate_json_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """`validate --json` prints one JSON object with the totals."""
    assert run_validate(str(ROOT / "jobs" / "campaign.yaml"), "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["jobs"] == 12 and plan["billable_seconds"] == 40
    assert plan["models"]["wan2.7-i2v"] == {"jobs": 4, "billable_seconds": 13, "unknown_seconds": 0}


def test_validate_summarises_many_jobs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With many jobs, the plan stays a few lines unless --list is given."""
    write(workdir / "m.yaml", f"campaign: c\njobs:\n  - name: s\n    model: {T2V}\n    prompt: p\n    matrix: {{seed: {list(range(50))}}}\n")
    assert run_validate("m.yaml") == 0
    out = capsys.readouterr().out
    assert "(50 jobs; --list prints them all)" in out and "s-49" not in out
    assert run_validate("m.yaml", "--list") == 0
    assert "s-49" in capsys.readouterr().out


def test_validate_prints_every_issue_and_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`validate` on a bad manifest prints each issue on stderr and exits 2."""
    write(workdir / "m.yaml", f"campaign: c\njobs:\n  - name: a\n    model: {T2V}\n    duration: 99\n")
    assert run_validate("m.yaml") == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"m.yaml:3:5: job 'a' ({T2V}): prompt is required by {T2V}",
        f"m.yaml:5:5: job 'a' ({T2V}): duration 99 is above the maximum 15",
        "2 issues found; nothing was sent",
    ]


def test_validate_caps_printed_issues(workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap, issues are counted rather than printed."""
    monkeypatch.setattr(_validate_cli, "MAX_PRINTED_ISSUES", 2)
    jobs = "".join(f"  - name: a{i}\n    model: {T2V}\n" for i in range(5))
    write(workdir / "m.yaml", "campaign: c\njobs:\n" + jobs)
    assert run_validate("m.yaml") == 2
    err = capsys.readouterr().err.splitlines()
    assert err[2:] == ["... and 3 more issues", "5 issues found; nothing was sent"]
