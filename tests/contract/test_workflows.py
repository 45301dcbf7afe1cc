""".github/workflows: pinned, least privilege, one deploy per stack at a time, and the
repository's own commands (so CI and a developer's machine cannot drift apart).

actionlint checks the workflows' syntax and expressions (.ci/run); these tests check what
it cannot know: how the workflows fit pipeline/deploy-role.yaml and this repository.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
CREDENTIALS = "aws-actions/configure-aws-credentials@"
DEPLOY = "./.github/workflows/deploy.yml"
# pipeline/deploy-role.yaml trusts these GitHub environments, each for its own stacks
ENVIRONMENTS = {
    "preview": r"orderflow-pr-\$\{\{ github\.event\.pull_request\.number \}\}",
    "staging": "orderflow-staging",
    "production": "orderflow-prod",
}


def workflow(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in FILES for name, job in workflow(path)["jobs"].items()]


def uses_credentials(job: dict[str, Any]) -> bool:
    return any(str(step.get("uses", "")).startswith(CREDENTIALS) for step in job.get("steps", []))


def test_the_workflows_are_there():
    assert {p.name for p in FILES} == {"checks.yml", "deploy.yml", "pull-request.yml", "main.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version(path):
    for line in path.read_text().splitlines():
        match = re.search(r"uses:\s*(\S+)(.*)", line)
        if not match or match.group(1).startswith("./"):
            continue
        action, rest = match.groups()
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), f"{path.name}: {action} is not pinned"
        # the comment Dependabot keeps in step with the SHA, and a reader checks against GitHub
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", rest), f"{path.name}: {action} has no '# vX.Y.Z'"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_workflow_grants_anything_by_default_or_reads_a_stored_secret(path):
    assert workflow(path)["permissions"] == {}
    assert "secrets." not in path.read_text(), "no stored keys: AWS is reached through OIDC"


@pytest.mark.parametrize(("file", "name", "job"), jobs(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_job_says_its_permissions_and_only_aws_jobs_get_an_oidc_token(file, name, job):
    assert "permissions" in job, f"{file}:{name}"
    permissions = job["permissions"]
    oidc = job.get("uses") == DEPLOY or uses_credentials(job)
    assert (permissions.get("id-token") == "write") == oidc, f"{file}:{name}"
    assert set(permissions.values()) <= {"read", "write"}
    assert {k for k, v in permissions.items() if v == "write"} <= {"id-token"}, f"{file}:{name}: writes"


@pytest.mark.parametrize(("file", "name", "job"), jobs(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_job_that_assumes_a_role_names_an_environment_the_role_trusts(file, name, job):
    if job.get("uses") == DEPLOY:
        assert job["with"]["environment"] in ENVIRONMENTS
        assert re.fullmatch(ENVIRONMENTS[job["with"]["environment"]], job["with"]["stack-name"])
    elif uses_credentials(job):
        environment = job["environment"]
        environment = environment["name"] if isinstance(environment, dict) else environment
        assert environment in {*ENVIRONMENTS, "${{ inputs.environment }}"}, f"{file}:{name}"


@pytest.mark.parametrize(("file", "name", "job"), jobs(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_job_that_changes_a_stack_waits_for_any_other_change_to_it(file, name, job):
    if not uses_credentials(job):
        return
    concurrency = job["concurrency"]
    assert concurrency["cancel-in-progress"] is False, "a CloudFormation update cannot stop half way"
    stack = job["env"]["STACK_NAME"]
    assert concurrency["group"] == f"stack-{stack}", f"{file}:{name}"


def test_the_preview_stack_is_deleted_in_the_group_it_is_deployed_in():
    deploy = workflow(WORKFLOWS / "deploy.yml")["jobs"]["deploy"]
    delete = workflow(WORKFLOWS / "pull-request.yml")["jobs"]["delete-preview"]
    preview = workflow(WORKFLOWS / "pull-request.yml")["jobs"]["preview"]
    assert deploy["concurrency"]["group"] == "stack-${{ inputs.stack-name }}"
    assert delete["concurrency"]["group"] == f"stack-{preview['with']['stack-name']}"
    assert delete["env"]["STACK_NAME"] == preview["with"]["stack-name"]
    assert "closed" in delete["if"]
    assert "closed" in workflow(WORKFLOWS / "pull-request.yml")["jobs"]["merge-base"]["if"]


def test_main_goes_to_production_only_after_staging_and_its_end_to_end_run():
    main = workflow(WORKFLOWS / "main.yml")["jobs"]
    assert main["staging"]["needs"] == "checks" and main["staging"]["with"]["end-to-end"] is True
    assert main["production"]["needs"] == "staging"
    assert main["production"]["with"]["environment"] == "production"


def run_lines() -> list[str]:
    lines = []
    for path in FILES:
        for job in workflow(path)["jobs"].values():
            for step in job.get("steps", []):
                lines += [line.strip() for line in step.get("run", "").splitlines() if line.strip()]
    return lines


def test_the_workflows_run_the_repositorys_own_commands():
    commands = {line.split()[0] for line in run_lines() if not line.startswith(("#", "--"))}
    # ./dev (lint, test, tool sam/cfn-lint/checkov) and .ci/run; the rest is shell glue and the
    # AWS CLI for what SAM does not do (deleting through the execution role, reading outputs)
    glue = {"[", "read", "echo", "if", "fi", "url=$(aws", "aws", "--query"}
    assert commands <= {"./dev", ".ci/run", *glue}
    text = "\n".join(run_lines())
    assert re.search(r"^\.ci/run$", text, re.M), "the checks are .ci/run's"
    assert "./dev lint" in text and "./dev tool sam build" in text and "./dev tool sam deploy" in text
    assert not re.search(r"(^|[;&|]\s*)(sam|pytest|pip|python\S*) ", text, re.M), "tools through ./dev only"
