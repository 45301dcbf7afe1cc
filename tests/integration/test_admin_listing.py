"""GET /orders for operators: an admin lists any customer's orders, filtered by status and
customer, newest first, page by page; a customer's listing stays their own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

pytestmark = [pytest.mark.db, pytest.mark.aws]

ORDER = json.loads((Path(__file__).resolve().parents[1] / "fixtures/place_order.json").read_text())


@pytest.fixture
def placed(orders_api, catalog, mint) -> dict[str, Any]:
    """Three orders of customer-1 (one of them being cancelled) and two of customer-2."""
    one, two = mint(sub="customer-1"), mint(sub="customer-2")
    mine = [orders_api.post("/orders", ORDER, token=one).body for _ in range(3)]
    theirs = [orders_api.post("/orders", ORDER, token=two).body for _ in range(2)]
    cancelled = orders_api.post(f"/orders/{mine[1]['orderId']}/cancel", token=one)
    assert cancelled.status == 202, cancelled.body
    return {"customer-1": mine, "customer-2": theirs, "cancelling": mine[1]["orderId"]}


def newest_first(orders: list[dict[str, Any]]) -> list[str]:
    return [o["orderId"] for o in sorted(orders, key=lambda o: (o["createdAt"], o["orderId"]), reverse=True)]


def every_page(orders_api, token: str, query: str = "", limit: int = 2) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = orders_api.get(
            "/orders", token=token, query="&".join(q for q in (query, f"limit={limit}", cursor) if q)
        )
        assert page.status == 200, page.body
        assert len(page.body["orders"]) <= limit
        seen += page.body["orders"]
        if not page.body["nextCursor"]:
            return seen
        cursor = f"cursor={page.body['nextCursor']}"


def test_an_admin_lists_every_customers_orders_newest_first(orders_api, placed, mint):
    admin = mint(sub="admin-1", scope="admin")
    listed = every_page(orders_api, admin)
    assert [o["orderId"] for o in listed] == newest_first(placed["customer-1"] + placed["customer-2"])
    assert {o["customerId"] for o in listed} == {"customer-1", "customer-2"}


def test_an_admin_finds_every_order_in_a_status(orders_api, placed, mint):
    admin = mint(sub="admin-1", scope="admin")
    stuck = every_page(orders_api, admin, "status=CANCELLING")
    assert [o["orderId"] for o in stuck] == [placed["cancelling"]]
    assert stuck[0]["status"] == "CANCELLING"
    pending = every_page(orders_api, admin, "status=PENDING", limit=1)
    expected = [
        o for o in placed["customer-1"] + placed["customer-2"] if o["orderId"] != placed["cancelling"]
    ]
    assert [o["orderId"] for o in pending] == newest_first(expected)
    assert every_page(orders_api, admin, "status=DELIVERED") == []


def test_an_admin_lists_one_customers_orders_and_combines_the_filters(orders_api, placed, mint):
    admin = mint(sub="admin-1", scope="admin")
    theirs = every_page(orders_api, admin, "customerId=customer-2")
    assert [o["orderId"] for o in theirs] == newest_first(placed["customer-2"])
    both = every_page(orders_api, admin, "customerId=customer-1&status=PENDING")
    assert [o["orderId"] for o in both] == newest_first(
        [o for o in placed["customer-1"] if o["orderId"] != placed["cancelling"]]
    )
    assert every_page(orders_api, admin, "customerId=nobody") == []


def test_a_customers_listing_stays_their_own_whatever_customer_id_says(orders_api, placed, mint):
    two = mint(sub="customer-2")
    for query in ("", "customerId=customer-1", "customerId=customer-2"):
        listed = every_page(orders_api, two, query)
        assert [o["orderId"] for o in listed] == newest_first(placed["customer-2"]), query
    # The status filter applies to their own orders only
    one = mint(sub="customer-1")
    assert [o["orderId"] for o in every_page(orders_api, one, "status=CANCELLING")] == [placed["cancelling"]]
    assert every_page(orders_api, two, "status=CANCELLING") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=STUCK", "status"),
        ("status=", "status"),
        ("status=pending", "status"),
        ("customerId=", "customerId"),
        ("customerId=" + "c" * 257, "customerId"),
    ],
)
def test_an_invalid_filter_is_a_422_naming_it(orders_api, mint, query, field):
    result = orders_api.get("/orders", token=mint(sub="admin-1", scope="admin"), query=query)
    assert result.status == 422, result.body
    assert [d["field"] for d in result.body["error"]["details"]] == [field]


def test_each_admin_listing_reads_an_index_in_its_order(engine):
    """Without sequential scans to fall back on, each query shape finds an index that
    gives its rows newest first (no sort over every order)."""
    shapes = {
        "orders_status_recent_idx": "WHERE status = 'CANCELLING'",
        "orders_recent_idx": "",
        "orders_customer_recent_idx": "WHERE customer_id = 'customer-1'",
    }
    with engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        for index, where in shapes.items():
            plan = "\n".join(
                conn.execute(
                    text(
                        f"EXPLAIN SELECT * FROM orders.orders {where}"  # noqa: S608 - fixed text
                        " ORDER BY created_at DESC, order_id DESC LIMIT 21"
                    )
                ).scalars()
            )
            assert index in plan, plan
            assert "Sort" not in plan.replace("Sort Key", ""), plan
