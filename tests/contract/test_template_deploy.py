"""template.yaml deploys what the contract promises: lint-clean, sample events for every
function, rules that select exactly their consumer's events, least-privilege roles."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orderflow.grants import FUNCTION_ROLES, ROLE_OF_SERVICE
from orderflow.template import functions, load
from tests.contract.test_template import CONSUMES  # the contract's "who consumes what"
from tests.support.tools import sam_transform, tool

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
FUNCTIONS = functions()
CONSUMERS = {fid: fn for fid, fn in FUNCTIONS.items() if fn.rule_patterns()}


def _samples(function_id: str) -> list[Path]:
    return sorted((EVENTS / function_id).glob("*.json"))


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for the patterns we use: each field's value is in its list."""
    return all(event.get(name) in allowed for name, allowed in pattern.items())


# ------------------------------------------------------------------ lint


def test_cfn_lint_passes_on_the_template_and_its_nested_schema_registry():
    # Suppressions live in the template, each with its reason (Metadata cfn-lint).
    result = subprocess.run(
        [tool("cfn-lint"), "template.yaml", "events/schemas/registry.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes():
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [tool("sam"), "validate", "--lint", "--template-file", "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_suppressed_lint_check_carries_its_reason():
    text = (ROOT / "template.yaml").read_text().splitlines()
    for number, line in enumerate(text):
        if "ignore_checks" in line:
            above = "\n".join(text[max(0, number - 3) : number])
            assert "#" in above, f"template.yaml:{number + 1}: ignore_checks without a reason above it"


# ------------------------------------------------------------------ sample events


def _eventbridge(sample: Path) -> list[dict[str, Any]]:
    """The events of a sample: a consumer's is an SQS batch whose bodies are the
    EventBridge events; any other sample is its one event."""
    loaded = json.loads(sample.read_text())
    return [json.loads(r["body"]) for r in loaded["Records"]] if "Records" in loaded else [loaded]


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_every_function_has_sample_events(function_id):
    assert _samples(function_id), f"no events/{function_id}/*.json"


@pytest.mark.parametrize("function_id", sorted(CONSUMES))
def test_each_rule_matches_its_consumers_samples_and_no_other_events(function_id):
    """Its own samples match; of every other sample in events/, exactly those of the
    detail-types the contract gives it (two consumers may take the same event)."""
    [pattern] = CONSUMERS[function_id].rule_patterns()
    for sample in _samples(function_id):
        for event in _eventbridge(sample):
            assert _matches(pattern, event), f"{function_id} misses {sample.name}"
    for sample in EVENTS.glob("*/*.json"):
        for event in _eventbridge(sample):
            expected = event.get("detail-type") in CONSUMES[function_id]
            assert _matches(pattern, event) == expected, f"{function_id} and {sample.relative_to(EVENTS)}"


def test_the_consumers_are_the_contracts():
    assert set(CONSUMERS) == set(CONSUMES)


def test_no_rule_takes_a_sample_of_a_function_that_is_not_a_consumer():
    for fid in set(FUNCTIONS) - set(CONSUMERS):
        for sample in _samples(fid):
            for event in _eventbridge(sample):
                for consumer, fn in CONSUMERS.items():
                    assert not _matches(fn.rule_patterns()[0], event), f"{consumer} takes {fid}/{sample.name}"


def test_env_json_points_every_function_at_local_postgres_and_an_emulator():
    env = json.loads((EVENTS / "env.json").read_text())["Parameters"]
    assert env["DATABASE_URL"].startswith("postgresql+pg8000://")
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


def test_the_variables_env_json_overrides_are_declared_and_empty_in_aws():
    # sam local invoke --env-vars only overrides variables the template declares.
    variables = load()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DATABASE_URL"] == ""
    assert variables["AWS_ENDPOINT_URL"] == ""
    env = json.loads((EVENTS / "env.json").read_text())["Parameters"]
    for fid, fn in FUNCTIONS.items():
        for name in ("DATABASE_URL", "AWS_ENDPOINT_URL"):
            assert name in fn.environment and name in env, (fid, name)


def test_an_empty_aws_endpoint_url_means_the_real_endpoint(monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    client = boto3.client("events", region_name="eu-west-1")
    assert client.meta.endpoint_url == "https://events.eu-west-1.amazonaws.com"


def test_an_empty_database_url_means_rds_proxy():
    from common.settings import Settings

    settings = Settings.from_env({"DATABASE_URL": "", "DB_HOST": "proxy", "AWS_ENDPOINT_URL": ""})
    assert settings.database_url is None and settings.db_host == "proxy"


# ------------------------------------------------------------------ the schema registry


def test_the_schema_registry_holds_every_event_schema_and_is_up_to_date():
    from orderflow.schemas import REGISTRY, schema_registry

    assert REGISTRY.read_text() == schema_registry()[REGISTRY], "run: orderflow schemas"
    nested = load(REGISTRY)
    registered = {
        r["Properties"]["SchemaName"].split("@", 1)[1]
        for r in nested["Resources"].values()
        if r["Type"] == "AWS::EventSchemas::Schema"
    }
    assert registered == {p.stem for p in (EVENTS / "schemas").glob("*.json")}
    assert load()["Resources"]["EventSchemas"]["Properties"]["Location"] == "events/schemas/registry.yaml"


def test_registered_schemas_accept_the_sample_events():
    import jsonschema

    from orderflow.schemas import registry_schema

    validated = set()
    for sample in EVENTS.glob("*/*.json"):
        for event in _eventbridge(sample):
            schema_file = EVENTS / "schemas" / f"{event.get('detail-type')}.json"
            if not schema_file.exists():
                continue
            schema = registry_schema(json.loads(schema_file.read_text()))
            jsonschema.Draft4Validator(schema).validate(event)
            validated.add(event["detail-type"])
    # Every event a consumer takes has a sample, and each of those was validated.
    assert validated >= {t for types in CONSUMES.values() for t in types}


# ------------------------------------------------------------------ provisioned concurrency


def test_provisioned_concurrency_and_its_scaling_cost_nothing_unless_asked_for():
    doc = load()
    resources = doc["Resources"]
    assert doc["Parameters"]["ProvisionedConcurrency"]["Default"] == "false"
    api = resources["OrdersApiFunction"]["Properties"]
    assert api["AutoPublishAlias"] == "live"
    assert api["ProvisionedConcurrencyConfig"]["Fn::If"][0] == "ProvisionedConcurrencyOn"
    target = resources["OrdersApiScalableTarget"]
    policy = resources["OrdersApiScalingPolicy"]
    assert target["Condition"] == policy["Condition"] == "ProvisionedConcurrencyOn"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (5, 50)
    assert target["Properties"]["ResourceId"] == {"Fn::Sub": "function:${OrdersApiFunction}:live"}
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 0.7
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "LambdaProvisionedConcurrencyUtilization"
    )


# Each consumer's prefix in the names template.yaml gives its queue, DLQ, rule and alarms.
PREFIX = {
    "OrderStatusFunction": "OrderStatus",
    "InventoryFunction": "Inventory",
    "NotificationsFunction": "Notifications",
    "ShippingFunction": "Shipping",
}


def _alarms_on(resources: dict[str, Any], queue: str, metric: str) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["Namespace"] == "AWS/SQS"
        and r["Properties"]["MetricName"] == metric
        and r["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]


def _queue_policy(resources: dict[str, Any], queue: str) -> dict[str, Any]:
    [policy] = [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and r["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    [statement] = policy["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Allow",
        {"Service": "events.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    return dict(statement["Condition"]["ArnEquals"])


def test_the_consumers_are_the_prefixes_of_the_contract():
    assert set(PREFIX) == set(CONSUMES)


@pytest.mark.parametrize("function_id", sorted(PREFIX))
def test_each_consumer_reads_its_own_queue_through_an_event_source_mapping(function_id):
    doc = load()
    resources, prefix = doc["Resources"], PREFIX[function_id]
    props = resources[function_id]["Properties"]
    # the queue's mapping is the function's only event source; no asynchronous invocation
    # remains (its retries and reserved concurrency were the old shape)
    [(name, event)] = props["Events"].items()
    assert event["Type"] == "SQS"
    assert "EventInvokeConfig" not in props and "ReservedConcurrentExecutions" not in props
    source = event["Properties"]
    assert source["Queue"] == {"Fn::GetAtt": [f"{prefix}Queue", "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BatchSize"] == {"Ref": "ConsumerBatchSize"}
    assert source["MaximumBatchingWindowInSeconds"] == {"Ref": "ConsumerBatchingWindow"}
    assert source["ScalingConfig"] == {"MaximumConcurrency": {"Ref": f"{prefix}Concurrency"}}
    # the parsed view the local suite runs on agrees
    [parsed] = FUNCTIONS[function_id].queues
    assert (parsed.event, parsed.queue_id, parsed.dlq_id) == (name, f"{prefix}Queue", f"{prefix}DLQ")
    assert parsed.report_batch_item_failures


@pytest.mark.parametrize("function_id", sorted(PREFIX))
def test_each_consumers_rule_fills_its_queue_only_from_the_bus(function_id):
    resources, prefix = load()["Resources"], PREFIX[function_id]
    rule = resources[f"{prefix}Rule"]
    assert rule["Type"] == "AWS::Events::Rule"
    props = rule["Properties"]
    assert props["EventBusName"] == {"Ref": "EventBus"} and props["State"] == "ENABLED"
    [target] = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [f"{prefix}Queue", "Arn"]}
    # what EventBridge cannot put in the queue goes to the consumer's DLQ
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [f"{prefix}DLQ", "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    # the queue takes messages from this rule only, the DLQ from this rule's name only
    assert _queue_policy(resources, f"{prefix}Queue") == {
        "aws:SourceArn": {"Fn::GetAtt": [f"{prefix}Rule", "Arn"]}
    }
    dlq_source = _queue_policy(resources, f"{prefix}DLQ")["aws:SourceArn"]["Fn::Sub"]
    assert dlq_source.endswith(":rule/orderflow-${Stage}/" + props["Name"]["Fn::Sub"])


@pytest.mark.parametrize("function_id", sorted(PREFIX))
def test_each_consumers_queue_redrives_to_its_dlq_encrypted_and_alarmed(function_id):
    doc = load()
    resources, prefix = doc["Resources"], PREFIX[function_id]
    queue = resources[f"{prefix}Queue"]["Properties"]
    dlq = resources[f"{prefix}DLQ"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [f"{prefix}DLQ", "Arn"]},
        "maxReceiveCount": {"Ref": "ConsumerMaxReceiveCount"},
    }
    receives = doc["Parameters"]["ConsumerMaxReceiveCount"]
    assert receives["MinValue"] >= 5 and receives["Default"] >= receives["MinValue"]
    # a dead letter keeps its first enqueue time: the DLQ must keep it longer than the queue
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    # the dead letters and the queue's age (a consumer falling behind) alarm the topic
    for name, metric in (
        (f"{prefix}DLQ", "ApproximateNumberOfMessagesVisible"),
        (f"{prefix}Queue", "ApproximateAgeOfOldestMessage"),
    ):
        [alarm] = _alarms_on(resources, name, metric)
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }


@pytest.mark.parametrize("function_id", sorted(PREFIX))
def test_each_queue_hides_a_batch_in_flight_for_six_function_timeouts_and_the_window(function_id):
    doc = load()
    resources, prefix = doc["Resources"], PREFIX[function_id]
    props = resources[function_id]["Properties"]
    timeout = int(props.get("Timeout", doc["Globals"]["Function"]["Timeout"]))
    window = doc["Parameters"]["ConsumerBatchingWindow"]
    # Lambda's advice for SQS sources: at least six timeouts plus the batching window
    assert resources[f"{prefix}Queue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout + window["MaxValue"]
    batch = doc["Parameters"]["ConsumerBatchSize"]
    # more than 10 needs a batching window; the window's default adds no latency
    assert 1 <= batch["Default"] <= batch["MaxValue"] <= 10 and window["Default"] == 0


def test_the_database_proxy_requires_iam_auth_and_tls():
    resources = load()["Resources"]
    proxy = resources["DbProxy"]["Properties"]
    assert proxy["RequireTLS"] is True
    assert [a["IAMAuth"] for a in proxy["Auth"]] == ["REQUIRED"]
    assert resources["DbProxyTargetGroup"]["Properties"]["DBClusterIdentifiers"] == [{"Ref": "DbCluster"}]
    cluster = resources["DbCluster"]["Properties"]
    assert cluster["Engine"] == "aurora-postgresql" and "ServerlessV2ScalingConfiguration" in cluster


# ------------------------------------------------------------------ least privilege

# What each function does, and so all its role may do beyond logging, X-Ray and the
# VPC (AWS managed policies whose actions take no narrower resource).
EXPECTED_GRANTS = {
    "OrdersApiFunction": {("events:PutEvents", "EventBus")},
    "OutboxRelayFunction": {("events:PutEvents", "EventBus")},
    # the consumers back a failed record off on their own queue (ChangeMessageVisibility)
    "OrderStatusFunction": {
        ("sqs:ChangeMessageVisibility", "OrderStatusQueue"),
        ("sqs:SendMessage", "OrderStatusDLQ"),  # an event refused for good
        ("events:PutEvents", "EventBus"),
    },
    "InventoryFunction": {
        ("sqs:ChangeMessageVisibility", "InventoryQueue"),
        ("sqs:SendMessage", "InventoryDLQ"),  # an event refused for good
        ("events:PutEvents", "EventBus"),
    },
    "InventoryApiFunction": set(),
    "NotificationsFunction": {
        ("sqs:ChangeMessageVisibility", "NotificationsQueue"),
        ("sqs:SendMessage", "NotificationsDLQ"),  # an event refused for good
        ("ses:SendEmail", "SesIdentity"),
    },
    "ShippingFunction": {
        ("sqs:ChangeMessageVisibility", "ShippingQueue"),
        ("sqs:SendMessage", "ShippingDLQ"),
        ("events:PutEvents", "EventBus"),
    },
    "ShippingApiFunction": {("events:PutEvents", "EventBus")},
}
SQS_EXECUTION_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
AWS_MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    SQS_EXECUTION_ROLE,  # what SAM's SQS event attaches: receive, delete, attributes of any queue
}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """The template as CloudFormation sees it after the SAM transform."""
    return sam_transform(load(), {}, {arn.rsplit("/", 1)[1]: arn for arn in AWS_MANAGED})


def _resource_name(resource: Any) -> str:
    """The logical id (or parameter) a policy's Resource points at."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    if isinstance(resource, dict) and "Ref" in resource:
        return str(resource["Ref"])
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        template = resource["Fn::Sub"][0]
        assert template.endswith(":identity/${Identity}")
        return "SesIdentity"
    raise AssertionError(f"unexpected resource {resource!r}")


@pytest.mark.parametrize("function_id", sorted(EXPECTED_GRANTS))
def test_each_function_role_grants_only_what_the_function_does(function_id, translated):
    role_ref = translated["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = translated["Resources"][role_ref]["Properties"]
    grants = set()
    denied = []
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny":
                denied.append(statement)
                continue
            assert statement["Effect"] == "Allow"
            assert statement["Resource"] != "*", f"{function_id}: {statement}"
            grants.add((statement["Action"], _resource_name(statement["Resource"])))
    assert grants == EXPECTED_GRANTS[function_id]
    managed = [m for m in role["ManagedPolicyArns"] if isinstance(m, str)]
    assert set(managed) <= AWS_MANAGED
    if function_id in PREFIX:
        # the managed SQS policy (any queue) is cut down to the function's own queue
        assert SQS_EXECUTION_ROLE in managed
        [deny] = denied
        queue = f"{PREFIX[function_id]}Queue"
        assert deny["NotResource"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= set(deny["Action"])
    else:
        assert SQS_EXECUTION_ROLE not in managed and denied == []
    assert [m for m in role["ManagedPolicyArns"] if not isinstance(m, str)] == [
        {"Ref": DB_CONNECT_POLICY[FUNCTION_ROLES[function_id]]}
    ]


def test_ses_is_granted_for_the_sender_identity_and_address_only(translated):
    role = translated["Resources"]["NotificationsFunctionRole"]["Properties"]
    [ses] = [
        s
        for p in role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Action"] == "ses:SendEmail"
    ]
    assert ses["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}}


# Each service's database role (src/orderflow/grants.py) and the policy that lets its
# functions connect as it.
DB_CONNECT_POLICY = {
    "orders": "OrdersDbConnectPolicy",
    "inventory": "InventoryDbConnectPolicy",
    "notifications": "NotificationsDbConnectPolicy",
    "shipping": "ShippingDbConnectPolicy",
    "outbox_relay": "RelayDbConnectPolicy",
}


def _connects_as(policy_id: str) -> str:
    """The one database user a connect policy allows, through the stack's proxy only."""
    policy = load()["Resources"][policy_id]["Properties"]["PolicyDocument"]
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "rds-db:connect"
    template, variables = statement["Resource"]["Fn::Sub"]
    prefix = "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:${ProxyId}/"
    assert template.startswith(prefix)
    when_created, when_existing = variables["ProxyId"]["Fn::If"][1:]
    assert "DbProxy" in json.dumps(when_created)
    assert when_existing == {"Ref": "ExistingDbProxyResourceId"}
    return str(template.removeprefix(prefix))


def test_every_service_role_has_a_connect_policy_for_that_user_only():
    assert set(DB_CONNECT_POLICY) == set(ROLE_OF_SERVICE)
    for role, policy_id in DB_CONNECT_POLICY.items():
        assert _connects_as(policy_id) == role
    # the master user: for migrations, attached to no function (checked per role above)
    assert _connects_as("DatabaseConnectPolicy") == "${DbUser}"


@pytest.mark.parametrize("function_id", sorted(FUNCTION_ROLES))
def test_each_function_connects_as_its_own_services_role(function_id):
    resources = load()["Resources"]
    variables = resources[function_id]["Properties"]["Environment"]["Variables"]
    assert variables["DB_USER"] == FUNCTION_ROLES[function_id]
    assert "DB_USER" not in load()["Globals"]["Function"]["Environment"]["Variables"]


def test_the_proxy_logs_in_as_the_service_roles_with_iam_and_as_the_master_with_its_secret(translated):
    resources = load()["Resources"]
    assert resources["DbProxy"]["Properties"]["DefaultAuthScheme"] == "IAM_AUTH"
    assert resources["DbCluster"]["Properties"]["EnableIAMDatabaseAuthentication"] is True
    role = translated["Resources"]["DbProxyRole"]["Properties"]
    statements = {s["Action"]: s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]}
    assert set(statements) == {"secretsmanager:GetSecretValue", "rds-db:connect"}
    secret = statements["secretsmanager:GetSecretValue"]
    assert secret["Resource"] == {"Fn::GetAtt": ["DbCluster", "MasterUserSecret.SecretArn"]}
    users = [r["Fn::Sub"] for r in statements["rds-db:connect"]["Resource"]]
    cluster = "${DbCluster.DBClusterResourceId}"
    prefix = f"arn:${{AWS::Partition}}:rds-db:${{AWS::Region}}:${{AWS::AccountId}}:dbuser:{cluster}/"
    assert all(u.startswith(prefix) for u in users)
    assert sorted(u.removeprefix(prefix) for u in users) == sorted(ROLE_OF_SERVICE)


def test_the_schedule_and_rules_may_invoke_only_their_own_function(translated):
    for logical_id, resource in translated["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Permission":
            assert resource["Properties"]["FunctionName"] != "*", logical_id


# ------------------------------------------------------------------ event sources

PUBLISHES_AS = {  # who may put events with which source (the relay: every publisher's rows)
    "OrdersApiFunction": {"orders.service"},
    "OrderStatusFunction": {"orders.service"},
    "InventoryFunction": {"inventory.service"},
    "ShippingFunction": {"shipping.service"},
    "ShippingApiFunction": {"shipping.service"},
    "OutboxRelayFunction": {"orders.service", "inventory.service", "shipping.service"},
}


def _put_events_statements(translated: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    role_ref = translated["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = translated["Resources"][role_ref]["Properties"]
    return [
        s
        for p in role.get("Policies", [])
        for s in p["PolicyDocument"]["Statement"]
        if s["Action"] == "events:PutEvents"
    ]


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_a_function_may_put_events_only_with_its_own_source(function_id, translated):
    statements = _put_events_statements(translated, function_id)
    if function_id not in PUBLISHES_AS:
        assert statements == []
        return
    [statement] = statements
    allowed = statement["Condition"]["StringEquals"]["events:source"]
    assert set([allowed] if isinstance(allowed, str) else allowed) == PUBLISHES_AS[function_id]


def test_the_bus_denies_each_source_to_everyone_but_its_functions(translated):
    resources = translated["Resources"]
    policies = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::EventBusPolicy"]
    denied: dict[str, set[str]] = {}
    for policy in policies:
        assert policy["EventBusName"] == {"Ref": "EventBus"}
        statement = policy["Statement"]
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
            "Deny",
            "*",
            "events:PutEvents",
        )
        source = statement["Condition"]["StringEquals"]["events:source"]
        exempt = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        roles = {e["Fn::GetAtt"][0] for e in exempt if "Fn::GetAtt" in e}
        for role in roles:  # each names a role the transform really made
            assert resources[role]["Type"] == "AWS::IAM::Role"
        others = [e for e in exempt if "Fn::GetAtt" not in e]
        assert others == [
            {"Fn::If": ["HasEventOperator", {"Ref": "EventOperatorRoleArn"}, {"Ref": "AWS::NoValue"}]}
        ]
        denied[source] = roles
    expected: dict[str, set[str]] = {}
    for function_id, sources in PUBLISHES_AS.items():
        for source in sources:
            expected.setdefault(source, set()).add(f"{function_id}Role")
    assert denied == expected
    # and every function role that may publish is in the transform's output under that name
    for function_id in PUBLISHES_AS:
        assert resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0] == f"{function_id}Role"


# ------------------------------------------------------------------ token issuer

COGNITO = ("UserPool", "UserPoolClient", "UserPoolResourceServer", "UserPoolAdminGroup")


def test_without_an_issuer_the_stack_brings_a_cognito_user_pool():
    doc = load()
    assert doc["Parameters"]["JwtIssuer"]["Default"] == ""
    assert doc["Conditions"]["CreateUserPool"] == {"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}
    resources = doc["Resources"]
    for name in COGNITO:
        assert resources[name]["Condition"] == "CreateUserPool", name
    [scope] = resources["UserPoolResourceServer"]["Properties"]["Scopes"]
    assert (resources["UserPoolResourceServer"]["Properties"]["Identifier"], scope["ScopeName"]) == (
        "orderflow",
        "admin",
    )
    assert resources["UserPoolAdminGroup"]["Properties"]["GroupName"] == "admin"
    assert resources["UserPool"]["Properties"]["AutoVerifiedAttributes"] == ["email"]


def test_the_authorizer_and_the_http_functions_use_the_pool_or_the_given_issuer():
    doc = load()
    resources = doc["Resources"]
    apis = [r for r in resources.values() if r["Type"] == "AWS::Serverless::HttpApi"]
    jwt_config = apis[0]["Properties"]["Auth"]["Authorizers"]["JwtAuthorizer"]["JwtConfiguration"]
    issuer = jwt_config["issuer"]["Fn::If"]
    assert issuer[0] == "CreateUserPool" and "${UserPool}" in issuer[1]["Fn::Sub"]
    assert issuer[2] == {"Ref": "JwtIssuer"}
    assert jwt_config["audience"] == [
        {"Fn::If": ["CreateUserPool", {"Ref": "UserPoolClient"}, {"Ref": "JwtAudience"}]}
    ]
    http_functions = [fid for fid, fn in FUNCTIONS.items() if "JWT_ISSUER" in fn.environment]
    assert {"OrdersApiFunction", "InventoryApiFunction"} <= set(http_functions)
    for fid in http_functions:
        env = FUNCTIONS[fid].environment
        assert env["JWT_ISSUER"] == jwt_config["issuer"], fid
        assert env["JWT_AUDIENCE"] == jwt_config["audience"][0], fid
        assert "${UserPool}/.well-known/jwks.json" in env["JWKS_URL"]["Fn::If"][1]["Fn::Sub"], fid
        # the pool's own; an external issuer's are given (tests/contract/test_template_trust.py)
        assert env["ADMIN_SCOPE"] == {
            "Fn::If": ["CreateUserPool", "orderflow/admin", {"Ref": "AdminScope"}]
        }, fid
        assert env["ADMIN_GROUP"] == {"Fn::If": ["CreateUserPool", "admin", {"Ref": "AdminGroup"}]}, fid
