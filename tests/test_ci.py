"""CI that can fail: every piped step runs under pipefail, every action is pinned by commit, no checkout keeps the
token, permissions are per job, Pages deploys only what CI passed, and `make test` checks the committed notebooks
as they are instead of regenerating them first (a temp clone with a stale notebook must fail the check)."""

import re
import subprocess
import sys

import pytest
import yaml
from snippet_loader import ROOT

WORKFLOW_DIR = ROOT / ".github/workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.y*ml"))
PIPE = re.compile(r"(?<!\|)\|(?!\|)")  # a shell pipe (`|` or `|&`), not `||`
SHA_PIN = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"\s+#\s*v\d+\.\d+\.\d+\s*$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.MULTILINE)


def load_text(text):
    workflow = yaml.safe_load(text)
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def load(path):
    return load_text(path.read_text(encoding="utf-8"))


def steps(workflow):
    for job_id, job in workflow.get("jobs", {}).items():
        for number, step in enumerate(job.get("steps", [])):
            yield job_id, job, number, step


def unsafe_pipes(workflow):
    """The steps whose `run:` pipes in a shell without pipefail, as (job, step number, shell).

    GitHub runs `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`; a step with no shell as `bash -e {0}`
    (or `sh -e {0}` where bash is missing) and `shell: sh` as `sh -e {0}`: in those the status of `a | b` is b's.
    """
    found = []
    for job_id, job, number, step in steps(workflow):
        script = step.get("run")
        if script is None or not PIPE.search(script):
            continue
        scopes = (step, job.get("defaults", {}).get("run", {}), workflow.get("defaults", {}).get("run", {}))
        shell = next((scope["shell"] for scope in scopes if "shell" in scope), None)
        if shell is not None and not re.match(r"(bash|sh)\b", shell):
            continue  # python, pwsh, ...: `|` is not a shell pipe there
        if shell == "bash" or (shell is not None and "pipefail" in shell):
            continue
        found.append((job_id, number, shell))
    return found


def test_there_are_workflows_to_check():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "deploy.yml"}


# --- pipefail ------------------------------------------------------------------------------------------------
OLD_CI_STEP = """
jobs:
  test:
    runs-on: ubuntu-24.04
    steps:
      - run: bash .ci/run 2>&1 | tee test-report.txt
"""


@pytest.mark.parametrize(
    "prefix, job_defaults, step_shell, flagged",
    [
        ("", "", "", True),  # the CI step before issue 11: bash -e, a failing suite showed green
        ("defaults:\n  run:\n    shell: bash\n", "", "", False),
        ("", "    defaults:\n      run:\n        shell: bash\n", "", False),
        ("defaults:\n  run:\n    shell: bash\n", "", "        shell: sh\n", True),
        ("", "", "        shell: bash -e {0}\n", True),
        ("", "", "        shell: bash -eo pipefail {0}\n", False),
    ],
)
def test_the_pipefail_check_flags_a_pipe_without_pipefail(prefix, job_defaults, step_shell, flagged):
    text = prefix + OLD_CI_STEP.replace("    runs-on", job_defaults + "    runs-on") + step_shell
    assert bool(unsafe_pipes(load_text(text))) is flagged, text


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_piped_run_step_has_pipefail(path):
    assert unsafe_pipes(load(path)) == [], f"{path.name}: give these steps `shell: bash` (or workflow defaults)"


def test_the_ci_step_pipes_ci_run_into_tee_under_bash():
    workflow = load(WORKFLOW_DIR / "ci.yml")
    runs = [step["run"] for _, _, _, step in steps(workflow) if "run" in step]
    assert "bash .ci/run 2>&1 | tee test-report.txt" in [r.strip() for r in runs]
    assert workflow["defaults"]["run"]["shell"] == "bash"


def test_ci_run_stops_at_the_first_failure():
    text = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert re.search(r"^set -euo pipefail$", text, re.MULTILINE)
    assert "make test" in text and "make test-backends" in text


# --- supply chain --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_version(path):
    text = path.read_text(encoding="utf-8")
    lines = USES_LINE.findall(text)
    parsed = [s["uses"] for _, _, _, s in steps(load(path)) if "uses" in s]
    parsed += [job["uses"] for job in load(path)["jobs"].values() if "uses" in job]
    assert len(lines) == len(parsed), "a `uses:` written in a form this test cannot read"
    for ref, rest in lines:
        if ref.startswith("./"):
            continue  # an action of this repository: pinned by the commit itself
        assert SHA_PIN.fullmatch(ref), f"{path.name}: {ref} is not pinned by a 40-hex commit SHA"
        assert VERSION_COMMENT.match(rest), f"{path.name}: {ref} needs its version as a comment (# vX.Y.Z)"


def test_one_action_one_pin_across_workflows():
    pins = {}
    for path in WORKFLOWS:
        for ref, rest in USES_LINE.findall(path.read_text(encoding="utf-8")):
            action, _, sha = ref.partition("@")
            pins.setdefault(action, set()).add((sha, rest.strip()))
    assert {a: p for a, p in pins.items() if len(p) > 1} == {}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_checkout_drops_the_token(path):
    checkouts = [s for _, _, _, s in steps(load(path)) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts, f"{path.name} checks nothing out?"
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}: persist-credentials: false"


def test_permissions_are_granted_per_job_and_only_deploy_writes():
    writers = set()
    for path in WORKFLOWS:
        workflow = load(path)
        assert workflow.get("permissions") == {}, f"{path.name}: top-level `permissions: {{}}`, then per job"
        for job_id, job in workflow["jobs"].items():
            granted = job.get("permissions")
            assert isinstance(granted, dict), f"{path.name}:{job_id} needs its own `permissions:` mapping"
            writers |= {(path.name, job_id, scope) for scope, level in granted.items() if level == "write"}
    assert writers == {("deploy.yml", "deploy", "pages"), ("deploy.yml", "deploy", "id-token")}


def test_dependabot_refreshes_pip_npm_and_actions():
    config = yaml.safe_load((ROOT / ".github/dependabot.yml").read_text(encoding="utf-8"))
    assert {u["package-ecosystem"] for u in config["updates"]} == {"pip", "npm", "github-actions"}


# --- deploy only what passed ---------------------------------------------------------------------------------
def test_pages_deploy_only_after_ci_passed_on_a_push_to_main():
    ci, deploy = load(WORKFLOW_DIR / "ci.yml"), load(WORKFLOW_DIR / "deploy.yml")
    assert set(deploy["on"]) == {"workflow_run"}, "no push/pull_request/workflow_dispatch trigger may deploy"
    assert deploy["on"]["workflow_run"]["workflows"] == [ci["name"]]
    assert deploy["on"]["workflow_run"]["types"] == ["completed"]
    gate = deploy["jobs"]["build"]["if"]
    for condition in (
        "github.event.workflow_run.conclusion == 'success'",
        "github.event.workflow_run.event == 'push'",
        "github.event.workflow_run.head_branch == 'main'",
        "github.event.workflow_run.head_repository.full_name == github.repository",
    ):
        assert condition in gate
    assert deploy["jobs"]["deploy"]["needs"] == "build"
    checkout = next(s for s in deploy["jobs"]["build"]["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ github.event.workflow_run.head_sha }}", "build the commit CI tested"


# --- checks of generated files can fail ----------------------------------------------------------------------
def make_dry_run(target):
    result = subprocess.run(
        ["make", "--dry-run", "--always-make", target], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_make_test_lints_first_and_never_regenerates_the_notebooks():
    commands = make_dry_run("test")
    regenerating = [c for c in commands if "build_notebooks.py" in c and "--check" not in c]
    assert regenerating == [], "make test must check the committed notebooks, not rewrite them"
    first = {tool: next(i for i, c in enumerate(commands) if tool in c) for tool in ("ruff check", "-m pytest")}
    assert first["ruff check"] < first["-m pytest"], "lint runs before the suite, so a lint fault fails fast"


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone of the repository at HEAD (local clone: hard links, a fraction of a second)."""
    dest = tmp_path_factory.mktemp("ci") / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True, timeout=120)
    return dest


def check_notebooks(repo, *args):
    return subprocess.run(
        [sys.executable, "snippets/notebooks/build_notebooks.py", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_notebook_that_disagrees_with_its_source_fails_the_check(clone):
    assert check_notebooks(clone, "--check").returncode == 0, "the clone at HEAD should start in sync"
    source, notebook = clone / "docs/en/tutorial.py", clone / "docs/en/tutorial.ipynb"
    committed = notebook.read_bytes()
    source.write_text(source.read_text(encoding="utf-8") + '\n# %%\nprint("a cell the notebook lacks")\n', "utf-8")
    stale = check_notebooks(clone, "--check")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "docs/en/tutorial.ipynb" in stale.stdout and "make notebooks" in stale.stdout
    assert notebook.read_bytes() == committed, "--check must not write"
