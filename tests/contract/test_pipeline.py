"""pipeline/deploy-role.yaml: GitHub can assume its roles from this repository only.

The trust policy is the whole of the pipeline's security: whoever can present a token
that matches it deploys. So each role must name one repository and one GitHub
environment exactly, for the STS audience, through GitHub's OIDC provider, and nothing
wider (no wildcard, no StringLike, no second statement).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from orderflow.template import load

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "pipeline" / "deploy-role.yaml"
ISSUER = "token.actions.githubusercontent.com"
ENVIRONMENTS = {
    "PreviewDeployRole": "preview",
    "StagingDeployRole": "staging",
    "ProductionDeployRole": "production",
}
# The stacks each role may change, as `sam deploy --stack-name` names them in .github/workflows.
STACKS = {"PreviewDeployRole": "pr-*", "StagingDeployRole": "staging", "ProductionDeployRole": "prod"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load(TEMPLATE)


def roles(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc["Resources"].items() if v["Type"] == "AWS::IAM::Role"}


def trust(role: dict[str, Any]) -> list[dict[str, Any]]:
    return role["Properties"]["AssumeRolePolicyDocument"]["Statement"]


def render(sub: Any, values: dict[str, str]) -> str:
    """A plain ``!Sub`` string with its ${Name} references replaced (no other intrinsics)."""
    assert isinstance(sub, dict) and set(sub) == {"Fn::Sub"} and isinstance(sub["Fn::Sub"], str), sub
    return re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: values[m.group(1)], sub["Fn::Sub"])


def test_github_can_assume_exactly_one_role_per_environment(doc):
    federated = {
        name for name, role in roles(doc).items() if any("Federated" in s["Principal"] for s in trust(role))
    }
    assert federated == set(ENVIRONMENTS)


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_the_trust_policy_names_this_repository_the_environment_and_the_sts_audience(doc, name):
    statements = trust(roles(doc)[name])
    assert len(statements) == 1, "one statement: a second could widen the trust"
    (statement,) = statements
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    # GitHub's provider, created here or given (the same URL either way)
    provider = ["CreateOidcProvider", {"Ref": "GitHubOidcProvider"}, {"Ref": "ExistingOidcProviderArn"}]
    assert statement["Principal"] == {"Federated": {"Fn::If": provider}}
    # StringEquals only: StringLike would make * and ? wildcards
    assert set(statement["Condition"]) == {"StringEquals"}
    conditions = statement["Condition"]["StringEquals"]
    assert set(conditions) == {f"{ISSUER}:aud", f"{ISSUER}:sub"}
    assert conditions[f"{ISSUER}:aud"] == "sts.amazonaws.com"
    subject = render(conditions[f"{ISSUER}:sub"], {"GitHubOwner": "my-org", "GitHubRepository": "orderflow"})
    assert subject == f"repo:my-org/orderflow:environment:{ENVIRONMENTS[name]}"


def test_the_provider_is_githubs_for_the_sts_audience_only(doc):
    provider = doc["Resources"]["GitHubOidcProvider"]
    assert provider["Condition"] == "CreateOidcProvider"
    assert provider["Properties"]["Url"] == f"https://{ISSUER}"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    pattern = re.compile(doc["Parameters"]["ExistingOidcProviderArn"]["AllowedPattern"])
    assert pattern.fullmatch(f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}")
    assert not pattern.fullmatch("arn:aws:iam::123456789012:oidc-provider/accounts.google.com")


@pytest.mark.parametrize(
    ("parameter", "good", "bad"),
    [
        ("GitHubOwner", ["my-org", "Ada", "a1-b2"], ["*", "my-*", "my-org/x", "my?org", "", "-org", "org:x"]),
        ("GitHubRepository", ["orderflow", "order.flow_2"], ["*", "order*", "a/b", "a:b", "x?", ""]),
    ],
)
def test_the_repository_parameters_take_no_wildcard(doc, parameter, good, bad):
    # A value with * or ? would be a literal under StringEquals (matching no token), but a
    # parameter that refuses them keeps the intent plain; / and : would change the claim's shape.
    pattern = re.compile(doc["Parameters"][parameter]["AllowedPattern"])
    assert [v for v in good if not pattern.fullmatch(v)] == []
    assert [v for v in bad if pattern.fullmatch(v)] == []


def test_cloudformation_alone_assumes_the_execution_role(doc):
    (statement,) = trust(doc["Resources"]["CloudFormationExecutionRole"])
    assert statement == {
        "Effect": "Allow",
        "Principal": {"Service": "cloudformation.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def inline_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_each_role_changes_its_own_stacks_and_only_through_the_execution_role(doc, name):
    changes = [
        s
        for s in inline_statements(roles(doc)[name])
        if {"cloudformation:CreateStack", "cloudformation:UpdateStack"} & set(s["Action"])
    ]
    assert len(changes) == 1
    (statement,) = changes
    stack = render(
        statement["Resource"],
        {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123"}
        | {"StackNamePrefix": "orderflow"},
    )
    assert stack == f"arn:aws:cloudformation:eu-west-1:123:stack/orderflow-{STACKS[name]}/*"
    assert statement["Condition"] == {
        "StringEquals": {"cloudformation:RoleArn": {"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}}
    }


def test_the_github_roles_pass_no_role_but_the_execution_role_and_only_to_cloudformation(doc):
    common = doc["Resources"]["DeployCommonPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    github = [s for name in ENVIRONMENTS for s in inline_statements(roles(doc)[name])] + common
    passes = [s for s in github if "iam:PassRole" in actions(s)]
    assert passes == [
        {
            "Sid": "PassTheExecutionRoleToCloudFormation",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": {"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]},
            "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        }
    ]
    # and no IAM, Lambda or other service write of their own: CloudFormation does those
    services = {a.split(":")[0] for s in github for a in actions(s)}
    assert services == {"s3", "iam", "cloudformation", "cognito-idp", "sqs", "events"}


def test_production_gets_no_test_rights(doc):
    actions = {a for s in inline_statements(roles(doc)["ProductionDeployRole"]) for a in s["Action"]}
    assert {a.split(":")[0] for a in actions} == {"cloudformation"}
