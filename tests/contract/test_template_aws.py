"""template.yaml's first contact with an AWS account (issue 16): migrations inside AWS,
before the new code takes traffic; checked on the template and on its SAM transform."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from orderflow.template import load
from tests.support.tools import sam_transform

RESOURCES = load()["Resources"]
FUNCTIONS = {k for k, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
APP_FUNCTIONS = FUNCTIONS - {"MigrationFunction"}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return sam_transform(load(), {})


# ------------------------------------------------------------------ migrations


def test_the_custom_resource_runs_the_live_migration_function_and_changes_with_its_version():
    migrations = RESOURCES["Migrations"]
    assert migrations["Type"] == "Custom::Migrations"
    props = migrations["Properties"]
    assert props["ServiceToken"] == {"Ref": "MigrationFunction.Alias"}
    # the migrations are the function's code: new migrations, new version, an Update
    assert props["MigrationsVersion"] == {"Ref": "MigrationFunction.Version"}
    # after the proxy reaches the cluster, when the stack makes them
    assert props["Database"]["Fn::If"][1] == {"Ref": "DbProxyTargetGroup"}


def test_the_migration_function_connects_as_the_master_user_with_its_own_time_limits():
    fn = RESOURCES["MigrationFunction"]["Properties"]
    globals_ = load()["Globals"]["Function"]
    assert fn["Environment"]["Variables"]["DB_USER"] == {"Ref": "DbUser"}
    assert fn["Policies"] == [{"Ref": "DatabaseConnectPolicy"}]  # rds-db:connect as DbUser, nothing else
    assert int(fn["Environment"]["Variables"]["DB_STATEMENT_TIMEOUT_MS"]) >= 300_000
    assert int(fn["Environment"]["Variables"]["DB_LOCK_TIMEOUT_MS"]) >= 30_000
    assert fn["Timeout"] == 900
    assert "VpcConfig" in globals_  # in the VPC, as every function
    assert RESOURCES["MigrationFunction"]["Metadata"]["BuildMethod"] == "makefile"
    assert load()["Outputs"]["MigrationFunctionArn"]["Value"] == {"Ref": "MigrationFunction.Alias"}


@pytest.mark.parametrize("function_id", sorted(APP_FUNCTIONS))
def test_every_function_and_its_alias_wait_for_the_migrations(function_id, translated):
    resources = translated["Resources"]
    assert resources[function_id].get("DependsOn") in ("Migrations", ["Migrations"])
    aliases = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Alias" and k == f"{function_id}Aliaslive"
    ]
    for alias in aliases:  # alias -> version -> function -> Migrations
        version = resources[alias]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Properties"]["FunctionName"] == {"Ref": function_id}


def test_the_migrations_do_not_wait_for_anything_they_would_migrate_for(translated):
    """No cycle: the custom resource depends on no application function."""
    text = repr(translated["Resources"]["Migrations"])
    assert not any(fid in text for fid in APP_FUNCTIONS)


# ------------------------------------------------------------------ watching it


def _code_metrics() -> dict[str, set[str]]:
    """Each metric name the code emits (namespace Orderflow) -> the source files emitting it."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found: dict[str, set[str]] = {}
    for path in (root / "services").rglob("*.py"):
        for name in re.findall(r'add_metric\(\s*name="(\w+)"', path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(root)))
    return found


def _resolve(node: Any, values: dict[str, str]) -> Any:
    """Fn::Join, Fn::Sub and Fn::If as CloudFormation evaluates them, with ``values`` for
    every ${Name} (a resource's logical id stands for its name or attribute)."""
    import re

    if isinstance(node, dict) and len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Fn::Join":
            return arg[0].join(str(_resolve(part, values)) for part in arg[1])
        if key == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m[1], f"<{m[1]}>"), arg)
        if key == "Fn::If":
            return _resolve(arg[1] if values.get(arg[0]) == "true" else arg[2], values)
    return node


def _dashboard(create_database: bool) -> dict[str, Any]:
    import json

    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]
    return json.loads(_resolve(body, {"CreateDatabase": "true" if create_database else "false"}))


AWS_METRICS = {  # what AWS publishes for each namespace, by the dimension the widgets use
    ("AWS/ApiGateway", "ApiId"): {"Count", "4xx", "5xx", "Latency", "IntegrationLatency"},
    ("AWS/Lambda", "FunctionName"): {
        "Errors",
        "Duration",
        "ConcurrentExecutions",
        "Throttles",
        "Invocations",
    },
    ("AWS/SQS", "QueueName"): {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"},
    ("AWS/RDS", "ProxyName"): {"ClientConnections", "DatabaseConnections"},
    ("AWS/RDS", "DBClusterIdentifier"): {"ServerlessDatabaseCapacity", "ACUUtilization"},
}


@pytest.mark.parametrize("create_database", [True, False])
def test_the_dashboard_names_only_metrics_the_code_or_aws_emits(create_database: bool):
    emitted = _code_metrics()
    services = {
        r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: r["Properties"]["CodeUri"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    widgets = _dashboard(create_database)["widgets"]
    seen = set()
    for widget in widgets:
        for row in widget["properties"]["metrics"]:
            namespace, name, dimension, value = row[:4]
            seen.add(name)
            if namespace == "Orderflow":
                assert dimension == "service" and value in services, row
                files = emitted.get(name, set())
                assert any(f.startswith(services[value].rstrip("/")) for f in files), (name, value, files)
            else:
                assert name in AWS_METRICS[(namespace, dimension)], row
                target = value.strip("<>").split(".")[0]
                assert target in RESOURCES, row  # a resource of this stack
    assert {"OrderPlaced", "5xx", "4xx", "Latency", "OutboxOldestUnpublishedAge", "OutboxParkedRows"} <= seen
    assert {"Errors", "Duration", "ConcurrentExecutions", "ApproximateNumberOfMessagesVisible"} <= seen
    assert ({"DatabaseConnections", "ServerlessDatabaseCapacity"} <= seen) is create_database


def test_every_function_logs_to_a_group_of_its_own_with_the_retention_parameter():
    for fid in FUNCTIONS:
        group = RESOURCES[fid]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        props = RESOURCES[group]["Properties"]
        assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
        assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}, fid
    groups = [RESOURCES[fid]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for fid in FUNCTIONS]
    assert len(set(groups)) == len(FUNCTIONS)


def test_the_http_api_writes_a_json_access_log_without_headers_or_personal_data():
    import json

    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogs", "Arn"]}
    line = json.loads(settings["Format"])  # JSON, one object per request
    assert {"requestId", "status", "routeKey", "authorizerError", "integrationError"} <= set(line)
    variables = " ".join(line.values()).lower()
    for forbidden in ("header", "authorization", "sourceip", "claims", "useragent"):
        assert forbidden not in variables, forbidden
    group = RESOURCES["HttpApiAccessLogs"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_user_pool_outlives_the_stack():
    pool = RESOURCES["UserPool"]
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"


def test_every_checkov_suppression_carries_its_reason():
    skipped = [
        (logical_id, skip)
        for logical_id, resource in RESOURCES.items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skipped
    for logical_id, skip in skipped:
        assert skip["id"].startswith("CKV_") and len(skip.get("comment", "")) > 20, (logical_id, skip)


# ------------------------------------------------------------------ rolling out

HTTP_FUNCTIONS = {"OrdersApiFunction", "InventoryApiFunction", "ShippingApiFunction"}
CONSUMER_FUNCTIONS = {"OrderStatusFunction", "InventoryFunction", "NotificationsFunction", "ShippingFunction"}


@pytest.mark.parametrize("function_id", sorted(HTTP_FUNCTIONS | CONSUMER_FUNCTIONS))
def test_each_new_version_rolls_out_through_codedeploy_and_rolls_back_on_its_alarms(function_id, translated):
    resources = translated["Resources"]
    update = resources[f"{function_id}Aliaslive"]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    group = resources[update["DeploymentGroupName"]["Ref"]]["Properties"]
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    alarms = {a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]}
    expected = {f"{function_id}ErrorsAlarm"}
    if function_id in HTTP_FUNCTIONS:
        expected |= {f"{function_id}ServerErrorsAlarm", f"{function_id}LatencyAlarm"}
        assert update["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHook"}
    assert alarms == expected
    # the errors alarm watches the new version only
    dims = {d["Name"]: d["Value"] for d in resources[f"{function_id}ErrorsAlarm"]["Properties"]["Dimensions"]}
    version_id = resources[f"{function_id}Aliaslive"]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert dims["ExecutedVersion"] == {"Fn::GetAtt": [version_id, "Version"]}


def test_no_rollout_alarm_names_the_api_its_function_serves(translated):
    """An alias's UpdatePolicy names its deployment group; were one of the group's alarms to
    name the HTTP API, whose integrations name the alias, CloudFormation would refuse the
    circle."""
    resources = translated["Resources"]

    def names(value: Any) -> set[str]:
        text = json.dumps(value)
        return set(re.findall(r'"(?:Ref|Fn::GetAtt)": \[?"(\w+)', text)) | set(re.findall(r"\$\{(\w+)", text))

    for function_id in HTTP_FUNCTIONS:
        group = resources[f"{function_id}DeploymentGroup"]["Properties"]
        for alarm in group["AlarmConfiguration"]["Alarms"]:
            assert "HttpApi" not in names(resources[alarm["Name"]["Ref"]]), (function_id, alarm)


def test_the_deployment_type_is_a_parameter_canary_by_default_all_at_once_allowed():
    parameter = load()["Parameters"]["DeploymentType"]
    assert parameter["Default"].startswith("Canary") and "AllAtOnce" in parameter["AllowedValues"]
    for fid in HTTP_FUNCTIONS | CONSUMER_FUNCTIONS:
        assert RESOURCES[fid]["Properties"]["DeploymentPreference"]["Type"] == {"Ref": "DeploymentType"}


def test_a_development_stack_deploys_all_at_once(translated):
    doc = sam_transform(load(), {"DeploymentType": "AllAtOnce"})
    group = doc["Resources"]["OrdersApiFunctionDeploymentGroup"]["Properties"]
    assert group["DeploymentConfigName"]["Fn::Sub"][1] == {"ConfigName": "AllAtOnce"}


def test_the_hook_probes_the_http_functions_new_versions_and_may_do_nothing_else():
    hook = RESOURCES["PreTrafficHook"]["Properties"]
    assert hook["FunctionName"]["Fn::Sub"].startswith("CodeDeployHook_")
    assert "VpcConfig" not in hook
    parts = hook["Environment"]["Variables"]["TARGETS"]["Fn::Join"][1]
    assert {p["Ref"] for p in parts if isinstance(p, dict)} == {f"{f}.Version" for f in HTTP_FUNCTIONS}
    [policy] = RESOURCES["PreTrafficHookRole"]["Properties"]["Policies"]
    actions = [s["Action"] for s in policy["PolicyDocument"]["Statement"]]
    assert actions == ["lambda:InvokeFunction", "codedeploy:PutLifecycleEventHookExecutionStatus"]


# ------------------------------------------------------------------ a network of its own

NETWORK = {
    k for k, r in RESOURCES.items() if r.get("Condition") in ("CreateNetwork", "CreateCognitoEndpoint")
}
GIVEN_VPC = {"VpcId": "vpc-0abc", "SubnetIds": "subnet-0a,subnet-0b"}


def _conditions() -> dict[str, Any]:
    return load()["Conditions"]


def _creates_network(**given: str) -> bool:
    from tests.contract.test_template_snapstart import evaluate, parameters

    return bool(evaluate(_conditions()["CreateNetwork"], parameters(**given), _conditions()))


def test_the_network_is_created_only_when_no_vpc_is_given():
    from tests.contract.test_template_snapstart import evaluate, parameters, refused

    assert refused(parameters()) == [] and _creates_network()
    assert refused(parameters(**GIVEN_VPC)) == [] and not _creates_network(**GIVEN_VPC)
    subnets = load()["Globals"]["Function"]["VpcConfig"]["SubnetIds"]
    assert evaluate(subnets, parameters(), _conditions()) == [
        {"Ref": "PrivateSubnetA"},
        {"Ref": "PrivateSubnetB"},
    ]
    assert evaluate(subnets, parameters(**GIVEN_VPC), _conditions()) == "subnet-0a,subnet-0b"
    for logical_id in ("FunctionSecurityGroup", "DatabaseSecurityGroup"):
        vpc = RESOURCES[logical_id]["Properties"]["VpcId"]
        assert evaluate(vpc, parameters(), _conditions()) == {"Ref": "Vpc"}
        assert evaluate(vpc, parameters(**GIVEN_VPC), _conditions()) == "vpc-0abc"
    for logical_id, prop in (("DbSubnetGroup", "SubnetIds"), ("DbProxy", "VpcSubnetIds")):
        assert RESOURCES[logical_id]["Properties"][prop] == subnets


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"VpcId": "vpc-0abc"}, "VpcId needs SubnetIds"),
        ({"SubnetIds": "subnet-0a,subnet-0b"}, "SubnetIds without VpcId"),
        # (with AdminScope: an external issuer must name its admins, another rule's refusal)
        (
            {"JwtIssuer": "https://issuer.example.com", "AdminScope": "orderflow/admin"},
            "A JwtIssuer outside AWS",
        ),
        ({"ExistingDbProxyEndpoint": "proxy.example"}, "An existing RDS Proxy is in a VPC of its own"),
    ],
)
def test_the_rules_refuse_a_half_given_network_or_an_unreachable_issuer(given, why):
    from tests.contract.test_template_snapstart import parameters, refused

    failed = refused(parameters(**given))
    assert len(failed) == 1 and why in failed[0], failed


def test_two_private_subnets_in_two_zones_and_no_way_to_the_internet():
    assert {
        RESOURCES[s]["Properties"]["AvailabilityZone"]["Fn::Select"][0]
        for s in ("PrivateSubnetA", "PrivateSubnetB")
    } == {0, 1}
    assert all(
        not RESOURCES[s]["Properties"]["MapPublicIpOnLaunch"] for s in ("PrivateSubnetA", "PrivateSubnetB")
    )
    kinds = {r["Type"] for r in RESOURCES.values()}
    assert not kinds & {
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::Route",
        "AWS::EC2::EIP",
    }
    assert {"Vpc", "PrivateSubnetA", "PrivateSubnetB", "EndpointSecurityGroup", "S3Endpoint"} <= NETWORK


def test_endpoints_for_exactly_what_the_code_calls_open_to_the_functions_only():
    endpoints = {
        RESOURCES[k]["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: RESOURCES[k]
        for k, r in RESOURCES.items()
        if r["Type"] == "AWS::EC2::VPCEndpoint"
    }
    # events: every publisher; email: SES v2 (notifications); sqs: the consumers' backoff
    # (ChangeMessageVisibilityBatch); cognito-idp: the pool's JWKS; s3: the migration
    # function's answer to CloudFormation (a gateway endpoint)
    assert set(endpoints) == {"events", "email", "sqs", "cognito-idp", "s3"}
    assert endpoints["cognito-idp"]["Condition"] == "CreateCognitoEndpoint"
    assert endpoints["s3"]["Properties"]["VpcEndpointType"] == "Gateway"
    for name in ("events", "email", "sqs", "cognito-idp"):
        props = endpoints[name]["Properties"]
        assert props["VpcEndpointType"] == "Interface" and props["PrivateDnsEnabled"] is True
        assert props["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}]
    group = RESOURCES["EndpointSecurityGroup"]["Properties"]
    assert group["SecurityGroupIngress"] == [
        {
            "Description": "HTTPS from the functions",
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "SourceSecurityGroupId": {"Ref": "FunctionSecurityGroup"},
        }
    ]
    assert [rule["CidrIp"] for rule in group["SecurityGroupEgress"]] == ["127.0.0.1/32"]


def test_the_sam_transform_keeps_each_functions_choice_of_subnets(translated):
    resources = translated["Resources"]
    for function_id in FUNCTIONS:
        subnets = resources[function_id]["Properties"]["VpcConfig"]["SubnetIds"]
        assert subnets == {
            "Fn::If": [
                "CreateNetwork",
                [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}],
                {"Ref": "SubnetIds"},
            ]
        }, function_id
    assert "VpcConfig" not in resources["PreTrafficHook"]["Properties"]
