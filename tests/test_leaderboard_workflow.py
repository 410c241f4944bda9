"""The leaderboard workflow's own shell commands, run on a fixture submission.

``.github/workflows/leaderboard.yml`` is parsed and every ``run:`` of its steps is executed
in order with bash in a git repository laid out like this one (base branch ``main``, a pull
request adding a submission under ``leaderboard/results/``), so a renamed option or command
fails here before it fails in CI. What exists only on GitHub is substituted: ``${{ ... }}``
expressions get the values GitHub would give, ``$GITHUB_OUTPUT`` and
``$GITHUB_STEP_SUMMARY`` are files, ``gh`` is a stub that records the comment, the install
step is skipped (the suite is installed here) and ``auhead-bench`` runs this checkout's CLI.
Each ``uses:`` action must have a stand-in below: a new one fails the test until it has.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import synthetic_records as syn
import yaml
from board_fixtures import BOARD, ranked_record, write_record

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "leaderboard.yml"
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
CONDITION = re.compile(r"^([\w.\-]+)\s*(==|!=)\s*'([^']*)'$")
INSTALL = re.compile(r"^python -m pip install (--quiet )?-e \.$")
PR_NUMBER = "7"


def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True
    data["on"] = data.pop(True, data.get("on"))
    return data


@dataclass
class Job:
    """The outcome of one job run locally."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: str | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)


class Runner:
    def __init__(self, repo: Path, event: str, tmp: Path):
        self.repo, self.event, self.tmp = repo, event, tmp
        self.bin = tmp / "bin"
        self.bin.mkdir(parents=True)
        self.gh_calls = tmp / "gh_calls.txt"
        self.summary = tmp / "summary.md"
        self._shim("auhead-bench", f'exec "{sys.executable}" -m auhead_bench.cli "$@"\n')
        # gh pr comment N --body-file FILE: record the call and the body it would post
        self._shim(
            "gh",
            f'echo "$@" >> "{self.gh_calls}"\n'
            'if [ "$1 $2" = "pr comment" ]; then cat "$5" > "' + str(tmp / "comment_posted.md")
            + '"; fi\n',
        )

    def _shim(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)

    def value(self, expr: str, job: Job) -> str:
        known = {
            "github.base_ref": "main",
            "github.event_name": self.event,
            "github.event.pull_request.number": PR_NUMBER,
            "github.token": "stub-token",
        }
        if expr in known:
            return known[expr]
        match = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
        if match:
            return job.outputs.get(match.group(1), {}).get(match.group(2), "")
        raise AssertionError(f"the test does not know the expression {expr!r}: add it")

    def condition(self, text: str | None, job: Job) -> bool:
        if text is None:
            return job.failed is None
        match = CONDITION.fullmatch(str(text).strip())
        assert match, f"the test cannot evaluate `if: {text}`: keep conditions simple or add it"
        left, op, right = match.groups()
        result = self.value(left, job) == right
        return (result if op == "==" else not result) and job.failed is None

    def substitute(self, text: str, job: Job) -> str:
        return EXPR.sub(lambda m: self.value(m.group(1), job), text)

    def run_job(self, name: str, spec: dict) -> Job:
        job = Job()
        for index, step in enumerate(spec["steps"]):
            label = step.get("id") or step.get("name") or step.get("uses") or str(index)
            if not self.condition(step.get("if"), job):
                job.skipped.append(label)
                continue
            job.ran.append(label)
            if "uses" in step:
                self.action(step, job)
                continue
            script = self.substitute(step["run"], job)
            if INSTALL.fullmatch(script.strip()):
                continue  # the suite is installed where the tests run
            output = self.tmp / f"output-{index}"
            output.write_text("")
            env = {
                **os.environ,
                **{k: self.substitute(str(v), job) for k, v in step.get("env", {}).items()},
                "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
                "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(self.summary),
                "CI": "true",
            }
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=self.repo, env=env, capture_output=True, text=True, timeout=600,
            )
            job.logs[label] = proc.stdout + proc.stderr
            if "id" in step:
                job.outputs[step["id"]] = dict(
                    line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
                )
            if proc.returncode != 0 and not step.get("continue-on-error"):
                job.failed = label
        return job

    def action(self, step: dict, job: Job) -> None:
        uses = step["uses"].split("@")[0]
        if uses in ("actions/checkout", "actions/setup-python", "actions/configure-pages"):
            return  # the repository is checked out and Python is set up where tests run
        if uses == "actions/upload-pages-artifact":
            site = self.repo / step["with"]["path"]
            assert (site / "index.html").is_file(), f"nothing to deploy in {site}"
            return
        if uses == "actions/deploy-pages":
            job.outputs[step.get("id", "deployment")] = {"page_url": "https://example.invalid/"}
            return
        raise AssertionError(f"no stand-in for the action {uses}: add one to this test")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def fixture_repo(tmp_path: Path, submission: dict[str, object]) -> Path:
    """A repository with the board on `main` and a pull request adding ``submission``."""
    repo = tmp_path / "repo"
    (repo / "leaderboard").mkdir(parents=True)
    for name in ("board.yaml", "flags.yaml"):
        shutil.copy(REPO / "leaderboard" / name, repo / "leaderboard" / name)
    shutil.copytree(REPO / "leaderboard" / "results", repo / "leaderboard" / "results")
    write_record(repo / "leaderboard" / "results" / "baselines", "memo.json",
                 ranked_record("memo", 22.0, 2.0, fid=11.5))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "board")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(repo, "checkout", "-q", "-b", "submission")
    for name, record in submission.items():
        write_record(repo / "leaderboard" / "results" / "lab", name, record)  # type: ignore[arg-type]
    (repo / "leaderboard" / "results" / "lab" / "config.yaml").write_text("name: lab\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "submission")
    return repo


def test_workflow_triggers_and_jobs():
    data = workflow()
    assert data["on"]["pull_request"]["paths"] == ["leaderboard/results/**"]
    assert data["on"]["push"]["branches"] == ["main"]
    assert set(data["jobs"]) == {"check", "deploy"}
    deploy = data["jobs"]["deploy"]
    assert deploy["permissions"]["pages"] == "write"
    runs = " ".join(s.get("run", "") for s in deploy["steps"])
    assert "leaderboard build --strict" in runs


@pytest.mark.slow
def test_pull_request_job_checks_comments_and_passes(tmp_path):
    repo = fixture_repo(tmp_path, {"new.json": ranked_record("newmethod", 21.5, 1.9, fid=12.0)})
    runner = Runner(repo, "pull_request", tmp_path)
    job = runner.run_job("check", workflow()["jobs"]["check"])
    assert job.failed is None, job.logs
    assert job.outputs["changed"] == {"count": "1"}
    assert job.outputs["check"] == {"status": "0"}, job.logs
    assert "Fail on a rejected record or one under another protocol" in job.skipped
    assert (tmp_path / "gh_calls.txt").read_text().split() == [
        "pr", "comment", PR_NUMBER, "--body-file", "comment.md"
    ]
    posted = (tmp_path / "comment_posted.md").read_text()
    assert "1 would join the ranked board" in posted and "newmethod" in posted
    assert "| psnr_rgb ↑ | 21.5 | 2 of 2 | memo 22 (Δ -0.5) |" in posted
    assert runner.summary.read_text() == posted
    assert (repo / "site" / "index.html").is_file()


@pytest.mark.slow
def test_pull_request_job_fails_naming_the_field_that_differs(tmp_path):
    other = ranked_record("fvdfirst", 21.5, 1.9)
    other.metrics["fvd_i3d_16f_allwin_full"] = syn.metric(
        "fvd_i3d_16f_allwin_full", None, higher_is_better=False, distribution={0: 300.0}
    )
    metric = BOARD.metric("fvd_i3d_16f_allwin_full")
    other.metrics["fvd_i3d_16f_allwin_full"].options = {**metric.options, "clips": "first"}
    other.metrics["fvd_i3d_16f_allwin_full"].protocol = {"version": "1"}
    repo = fixture_repo(tmp_path, {"fvd.json": other})
    runner = Runner(repo, "pull_request", tmp_path)
    job = runner.run_job("check", workflow()["jobs"]["check"])
    assert job.failed == "Fail on a rejected record or one under another protocol"
    assert job.outputs["check"]["status"] != "0"
    posted = (tmp_path / "comment_posted.md").read_text()
    assert 'metrics.fvd_i3d_16f_allwin_full.options.clips is "first"' in posted
    assert "other protocol leaderboard/results/lab/fvd.json: metrics.fvd_i3d_16f_allwin_full" \
        ".options.clips" in job.logs["check"]


@pytest.mark.slow
def test_push_to_main_builds_strict_and_deploys(tmp_path):
    repo = fixture_repo(tmp_path, {"new.json": ranked_record("newmethod", 21.5, 1.9, fid=12.0)})
    runner = Runner(repo, "push", tmp_path)
    data = workflow()
    assert not runner.condition(data["jobs"]["check"]["if"], Job())  # the PR job stays off
    job = runner.run_job("deploy", data["jobs"]["deploy"])
    assert job.failed is None, job.logs
    assert job.ran[-1] == "deployment"
    index = (repo / "site" / "index.html").read_text()
    assert "newmethod" in index and "reported" in index
    # a rejected record fails the push build (--strict)
    (repo / "leaderboard" / "results" / "lab" / "broken.json").write_text("{")
    shutil.rmtree(repo / "site")
    job = Runner(repo, "push", tmp_path / "again").run_job("deploy", data["jobs"]["deploy"])
    assert job.failed == "Build the site", job.logs
