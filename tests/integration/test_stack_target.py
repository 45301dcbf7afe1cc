"""tests/support/stack.py's deployed mode on moto: the outputs read from CloudFormation, test
users made in the stack's Cognito pool (and removed), events read from its capture queue.

tests/e2e/test_deployed.py runs the flows through the same code against the local suite;
this covers what that cannot: CloudFormation's outputs and Cognito.
"""

from __future__ import annotations

import json

import botocore.session
import jwt
import pytest
from moto import mock_aws

from tests.support.stack import CognitoUsers, Stack

pytestmark = pytest.mark.aws

TEMPLATE = {
    "Parameters": {"PoolId": {"Type": "String"}, "ClientId": {"Type": "String"}},
    "Resources": {"EventCaptureQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "capture"}}},
    "Outputs": {
        "ApiUrl": {"Value": "https://abc.execute-api.us-east-1.amazonaws.com/"},
        "UserPoolId": {"Value": {"Ref": "PoolId"}},
        "UserPoolClientId": {"Value": {"Ref": "ClientId"}},
        "EventCaptureQueueUrl": {"Value": {"Ref": "EventCaptureQueue"}},
    },
}


@pytest.fixture
def aws():
    with mock_aws():
        session = botocore.session.get_session()
        cognito = session.create_client("cognito-idp", region_name="us-east-1")
        pool = cognito.create_user_pool(PoolName="orderflow-pr-1")["UserPool"]["Id"]
        client = cognito.create_user_pool_client(
            UserPoolId=pool, ClientName="orderflow-pr-1", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        cognito.create_group(UserPoolId=pool, GroupName="admin")
        session.create_client("cloudformation", region_name="us-east-1").create_stack(
            StackName="orderflow-pr-1",
            TemplateBody=json.dumps(TEMPLATE),
            Parameters=[
                {"ParameterKey": "PoolId", "ParameterValue": pool},
                {"ParameterKey": "ClientId", "ParameterValue": client},
            ],
        )
        yield cognito, pool


def test_a_deployed_stack_is_found_by_its_outputs(aws):
    stack = Stack.deployed("orderflow-pr-1")
    assert stack.api == "https://abc.execute-api.us-east-1.amazonaws.com"
    assert stack.capture.queue_url.endswith("/capture")
    assert isinstance(stack.users, CognitoUsers)


def test_test_users_get_id_tokens_from_the_pool_and_are_removed(aws):
    cognito, pool = aws
    stack = Stack.deployed("orderflow-pr-1")
    claims = jwt.decode(stack.users.token("ada", "ada@example.com"), options={"verify_signature": False})
    admin = jwt.decode(stack.admin(), options={"verify_signature": False})
    assert claims["token_use"] == "id" and pool in claims["iss"] and "cognito:groups" not in claims
    assert admin["cognito:groups"] == ["admin"]
    assert len(cognito.list_users(UserPoolId=pool)["Users"]) == 2
    stack.users.remove_all()
    assert cognito.list_users(UserPoolId=pool)["Users"] == []


def test_a_stack_without_event_capture_is_refused(aws):
    with pytest.raises(RuntimeError, match="EventCapture=true"):
        Stack.from_outputs({"ApiUrl": "https://x"}, users=None, sqs=None)  # type: ignore[arg-type]


def test_captured_events_are_kept_by_order_and_taken_off_the_queue(aws):
    stack = Stack.deployed("orderflow-pr-1")
    sqs = stack.capture.sqs
    for detail_type in ("OrderCreated", "InventoryReserved"):
        event = {"source": "x", "detail-type": detail_type, "detail": {"orderId": "o-1", "metadata": {}}}
        sqs.send_message(QueueUrl=stack.capture.queue_url, MessageBody=json.dumps(event))
    seen = stack.capture.events("o-1", "OrderCreated", "InventoryReserved", timeout_s=10)
    assert sorted(e["detail-type"] for e in seen) == ["InventoryReserved", "OrderCreated"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.capture.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    with pytest.raises(AssertionError, match="ShipmentDelivered"):
        stack.capture.events("o-1", "ShipmentDelivered", timeout_s=0)
