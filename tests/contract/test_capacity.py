"""template.yaml's capacity and outbox guards: consumers capped by their queues' event
source mappings, the proxy failing fast, the outbox's health alarmed, retention
outliving the archive."""

from __future__ import annotations

from typing import Any

import pytest

from common.settings import Settings
from orderflow.template import load

CONSUMERS = {
    "OrderStatusFunction": "OrderStatusConcurrency",
    "InventoryFunction": "InventoryConcurrency",
    "NotificationsFunction": "NotificationsConcurrency",
    "ShippingFunction": "ShippingConcurrency",
}


def resources() -> dict[str, Any]:
    return load()["Resources"]


def function_timeout(logical_id: str) -> int:
    doc = load()
    props = doc["Resources"][logical_id]["Properties"]
    return int(props.get("Timeout", doc["Globals"]["Function"]["Timeout"]))


@pytest.mark.parametrize("logical_id", sorted(CONSUMERS))
def test_every_consumer_is_capped_by_its_queues_maximum_concurrency_with_a_sound_default(logical_id):
    doc = load()
    param = CONSUMERS[logical_id]
    props = doc["Resources"][logical_id]["Properties"]
    # the event source mapping stops polling at the cap: events wait in the queue,
    # visible, instead of a reserved concurrency that throttles invocations
    assert "ReservedConcurrentExecutions" not in props
    [source] = [e["Properties"] for e in props["Events"].values() if e["Type"] == "SQS"]
    assert source["ScalingConfig"]["MaximumConcurrency"] == {"Ref": param}
    spec = doc["Parameters"][param]
    # Lambda takes 2 to 1,000 for MaximumConcurrency
    assert spec["Type"] == "Number" and 2 <= spec["MinValue"] <= spec["Default"] <= 50
    assert spec["MaxValue"] <= 1000


def test_the_consumers_together_leave_the_api_headroom_under_the_default_account_limit():
    doc = load()
    consumers = sum(doc["Parameters"][p]["Default"] for p in CONSUMERS.values())
    relay = doc["Resources"]["OutboxRelayFunction"]["Properties"]["ReservedConcurrentExecutions"]
    # 1,000 is Lambda's default account concurrency; the consumers and the relay together
    # (each execution one proxy connection) stay within a tenth of it.
    assert consumers + relay <= 100


def test_the_proxy_borrow_timeout_is_shorter_than_every_function_timeout():
    pool = resources()["DbProxyTargetGroup"]["Properties"]["ConnectionPoolConfigurationInfo"]
    timeouts = [
        function_timeout(k) for k, r in resources().items() if r["Type"] == "AWS::Serverless::Function"
    ]
    assert 0 < pool["ConnectionBorrowTimeout"] < min(timeouts)
    for limit in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
        assert limit in pool["InitQuery"]


@pytest.mark.parametrize(
    ("alarm", "metric", "threshold"),
    [("OutboxAgeAlarm", "OutboxOldestUnpublishedAge", 300), ("OutboxParkedAlarm", "OutboxParkedRows", 0)],
)
def test_the_outbox_health_is_alarmed_to_the_alarm_topic(alarm, metric, threshold):
    props = resources()[alarm]["Properties"]
    assert props["Namespace"] == "Orderflow" and props["MetricName"] == metric
    assert props["Threshold"] == threshold and props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["Dimensions"] == [{"Name": "service", "Value": "outbox-relay"}]
    relay_env = resources()["OutboxRelayFunction"]["Properties"]["Environment"]["Variables"]
    assert relay_env["POWERTOOLS_SERVICE_NAME"] == "outbox-relay"
    assert props["AlarmActions"] == resources()["ShippingDLQAlarm"]["Properties"]["AlarmActions"]


def test_retention_defaults_outlive_the_archive_and_eventbridges_retry_window():
    archive_days = resources()["EventArchive"]["Properties"]["RetentionDays"]
    defaults = Settings()
    assert defaults.processed_events_retention_days > archive_days + 1
    assert defaults.outbox_retention_days > archive_days + 1


def test_the_retry_horizon_rides_out_hours_of_outage_within_the_queues_retention():
    """The consumers' backoff (common.consumer) over the template's maxReceiveCount: the
    time a transient failure is retried before the DLQ (docs/capacity.md)."""
    from common.consumer import retry_delay_s

    doc = load()
    receives = doc["Parameters"]["ConsumerMaxReceiveCount"]["Default"]
    shortest = sum(retry_delay_s(n, rng=lambda: 0.0) for n in range(1, receives + 1))
    longest = sum(retry_delay_s(n, rng=lambda: 1.0) for n in range(1, receives + 1))
    assert 5 * 3600 <= shortest <= longest <= 10.1 * 3600, (shortest, longest)
    for logical_id in CONSUMERS:
        prefix = logical_id.removesuffix("Function")
        retention = resources()[f"{prefix}Queue"]["Properties"]["MessageRetentionPeriod"]
        assert retention > 2 * longest
