"""End-to-end: the local suite's console in a real headless Chromium (Debian's
``chromium`` and ``chromium-driver``, driven by Selenium), and ``orderflow journey
--format mermaid`` read back.

Its own module, so its own suite: the SES fault below must not touch other tests.
A screenshot of each page is left in ``.artifacts/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orderflow.paths import ROOT
from tests.support import mermaid
from tests.support.local_suite import LocalSuite, http, orderflow, wait_for

pytestmark = pytest.mark.db

ARTIFACTS = ROOT / ".artifacts"


def _browser_parts() -> tuple[str, str]:
    """Chromium and its driver from the system; outside CI a machine without them skips."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [n for n, p in (("chromium", chromium), ("chromium-driver", driver)) if not p]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        message = f"the browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)  # .ci/run installs them: missing there is a failure
        pytest.skip(message)
    assert chromium and driver
    return chromium, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = _browser_parts()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1100",
    ):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to download a driver
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


def until(browser: Any, what: str, check: Callable[[Any], Any], timeout_s: float = 60) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(
            browser, timeout_s, 0.2, ignored_exceptions=[StaleElementReferenceException]
        ).until(check)
    except TimeoutException:
        shot(browser, "failed")
        raise AssertionError(
            f"waited {timeout_s:.0f} s for {what}; the page:\n{browser.page_source[:4000]}"
        ) from None


def press(browser: Any, css: str) -> None:
    """Click a button; found again if the page's refresh replaced it meanwhile."""
    from selenium.webdriver.common.by import By

    def click(b: Any) -> bool:
        b.find_element(By.CSS_SELECTOR, css).click()
        return True

    until(browser, f"a click on {css}", click, 10)


def shot(browser: Any, name: str) -> Path:
    """The whole page (the window stretched to its height for the shot)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.set_window_size(1280, min(max(height, 1100), 6000))
    try:
        browser.save_screenshot(str(path))
    finally:
        browser.set_window_size(1280, 1100)
    return path


def test_the_ready_line_names_the_console(suite: LocalSuite) -> None:
    (ready,) = [line for line in suite.lines if re.search(r"\bready\b", line)]
    assert f"console {suite.api}/console/" in ready, ready


def test_an_orders_journey_is_drawn_as_it_moves_and_the_front_page_lists_it(
    suite: LocalSuite, browser: Any, customer: tuple[str, str], sku: str
) -> None:
    from selenium.webdriver.common.by import By

    token, _ = customer
    suite.stock(sku, on_hand=5)
    order_id = suite.place(token, [{"sku": sku, "quantity": 2}]).body["orderId"]
    # Opened at once: the page follows the order as it moves, without a reload.
    browser.get(f"{suite.api}/console/orders/{order_id}")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Order {order_id}"
    marker = browser.execute_script("return window.__sameDocument = 'still here'")

    def diagram_text(b: Any) -> str:
        return str(b.find_element(By.CSS_SELECTOR, "main svg.journey").get_attribute("textContent"))

    words = ("OrderCreated", "InventoryReserved", "ShipmentRequested", "SHIPPING")
    drawn = until(browser, f"the diagram to name {words}", lambda b: all(w in diagram_text(b) for w in words))
    assert drawn
    assert browser.execute_script("return window.__sameDocument") == marker  # refreshed in place
    svg = browser.find_element(By.CSS_SELECTOR, "main svg.journey")
    lanes = [t.text for t in svg.find_elements(By.CSS_SELECTOR, "g.lane text")]
    assert lanes == ["orders API", "bus", "inventory", "notifications", "shipping", "order status"]
    arrows = [g.get_attribute("textContent") for g in svg.find_elements(By.CSS_SELECTOR, "g.row.event")]
    assert any("InventoryReserved" in a for a in arrows) and not svg.find_elements(
        By.CSS_SELECTOR, "g.failed"
    )
    assert "status CONFIRMED → SHIPPING" in diagram_text(browser)
    assert "ShipmentDispatched" not in diagram_text(browser)

    # While the page is open, the goods leave: the drawing follows, without a reload
    admin = suite.token("e2e-admin", admin=True)
    dispatched = suite.request(
        "POST",
        f"/shipments/{order_id}/dispatch",
        token=admin,
        body={"carrier": "DHL", "trackingNumber": "JD0146"},
    )
    assert dispatched.status == 200, dispatched.body
    later = ("ShipmentDispatched", "status SHIPPING → SHIPPED", "shipment DISPATCHED (DHL JD0146)")
    until(browser, f"the open page to show {later}", lambda b: all(w in diagram_text(b) for w in later))
    assert browser.execute_script("return window.__sameDocument") == marker
    assert shot(browser, "order").stat().st_size > 10_000
    # the same diagram as Mermaid, to copy from the page
    pasted = mermaid.parse(
        str(browser.find_element(By.CSS_SELECTOR, "#mermaid pre").get_attribute("textContent"))
    )
    assert ("shipping", "->>", "bus") in {(a, arrow, b) for a, arrow, b, _ in pasted.messages}

    browser.get(f"{suite.api}/console/")
    row = until(
        browser,
        "the front page to list the order",
        lambda b: b.find_element(By.CSS_SELECTOR, f'tr[data-order="{order_id}"]'),
    )
    assert "SHIPPED" in row.text and "25.00 USD" in row.text and customer[1].split("@")[0] in row.text
    shot(browser, "front")


def test_what_customers_send_is_shown_as_text_never_run_as_markup(
    suite: LocalSuite, browser: Any, sku: str
) -> None:
    from selenium.webdriver.common.by import By

    sub = f'<img src=x id=pwned-{uuid.uuid4().hex[:6]} onerror="document.title=1">'
    token = suite.token(sub, "mallory@example.com")
    suite.stock(sku, on_hand=5)
    order_id = suite.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"]
    browser.get(f"{suite.api}/console/orders/{order_id[:8]}")  # a unique prefix is enough
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Order {order_id}"
    assert sub in browser.find_element(By.CSS_SELECTOR, ".facts").text
    browser.get(f"{suite.api}/console/")
    row = until(
        browser, "the order listed", lambda b: b.find_element(By.CSS_SELECTOR, f'tr[data-order="{order_id}"]')
    )
    assert sub in row.text
    assert not browser.find_elements(By.CSS_SELECTOR, "img") and browser.title != "1"


def test_a_dead_letter_shows_in_the_dlq_view_and_its_redrive_button_sends_one_email(
    suite: LocalSuite, browser: Any, customer: tuple[str, str], sku: str
) -> None:
    from selenium.webdriver.common.by import By

    token, email = customer
    sender = suite.state["sender"]
    ses = suite.aws_client("ses")
    suite.stock(sku, on_hand=5)
    # Given NotificationsFunction cannot send (its SES identity removed): the receipt is poisoned
    ses.delete_identity(Identity=sender)
    try:
        order_id = suite.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"]
        browser.get(f"{suite.api}/console/dlq")
        row_css = f'#NotificationsFunction tr[data-message]:has(a[href="/console/orders/{order_id}"])'
        row = until(
            browser, "the receipt in the DLQ view", lambda b: b.find_element(By.CSS_SELECTOR, row_css)
        )
        # decoded: the event named, the envelope it came in known
        assert "OrderCreated" in row.text and " via " in row.text and "via unknown" not in row.text
    finally:
        ses.verify_email_identity(EmailAddress=sender)
    assert suite.emails_to(email) == []
    # its order's page draws the dead letter in red
    browser.get(f"{suite.api}/console/orders/{order_id}")
    failed = until(
        browser, "a red dead letter", lambda b: b.find_element(By.CSS_SELECTOR, "svg g.row.failed")
    )
    assert "OrderCreated dead-lettered" in str(failed.get_attribute("textContent"))
    shot(browser, "dead-letter")

    # When the operator presses that message's Redrive button
    browser.get(f"{suite.api}/console/dlq")
    until(browser, "the Redrive button", lambda b: b.find_element(By.CSS_SELECTOR, f"{row_css} button"))
    shot(browser, "dlq-with-letter")
    press(browser, f"{row_css} button")
    flash = until(browser, "the answer", lambda b: b.find_element(By.ID, "flash").text or None)
    assert "put back 1 event" in flash, flash
    # Then exactly one email, the message gone from the view, and nothing else done twice
    wait_for(lambda: suite.emails_to(email), lambda m: len(m) == 1, 30, "one receipt", suite)
    until(browser, "the DLQ view without it", lambda b: not b.find_elements(By.CSS_SELECTOR, row_css))
    shot(browser, "dlq")
    assert suite.wait_settled(token, order_id)["status"] == "SHIPPING"
    time.sleep(2)  # the redriven event reached every consumer: each skips it
    assert len(suite.emails_to(email)) == 1
    assert suite.inventory(sku)["reserved"] == 1


def test_a_parked_outbox_row_is_requeued_from_the_outbox_view(
    suite: LocalSuite, browser: Any, customer: tuple[str, str], sku: str
) -> None:
    from selenium.webdriver.common.by import By
    from sqlalchemy import create_engine, text

    token, _ = customer
    suite.stock(sku, on_hand=5)
    order_id = suite.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"]
    suite.wait_settled(token, order_id)
    # Given a parked row (as the relay parks an entry refused for good): a status change
    # nobody consumes, so publishing it has no other effect
    engine = create_engine(suite.state["database"])
    new = uuid.uuid4()
    try:
        with engine.begin() as conn:
            row_id = conn.execute(
                text(
                    "INSERT INTO eventing.outbox (event_id, source, detail_type, detail, correlation_id,"
                    " parked_at, parked_reason)"
                    " SELECT :new, source, detail_type,"
                    " jsonb_set(detail, '{metadata,eventId}', to_jsonb(CAST(:new_text AS text))),"
                    " correlation_id, now(), 'AccessDeniedException: parked by the test'"
                    " FROM eventing.outbox"
                    " WHERE detail->>'orderId' = :order AND detail_type = 'OrderStatusChanged'"
                    " LIMIT 1 RETURNING id"
                ),
                {"new": new, "new_text": str(new), "order": order_id},
            ).scalar_one()
        browser.get(f"{suite.api}/console/")
        until(
            browser,
            "the parked row at a glance",
            lambda b: "1 parked" in b.find_element(By.CSS_SELECTOR, ".glance").text,
        )
        browser.get(f"{suite.api}/console/outbox")
        row_css = f'tr[data-row="{row_id}"]'
        row = until(browser, "the parked row", lambda b: b.find_element(By.CSS_SELECTOR, row_css))
        assert "parked by the test" in row.text
        press(browser, f"{row_css} button")
        flash = until(browser, "the answer", lambda b: b.find_element(By.ID, "flash").text or None)
        assert flash == "requeued 1 row(s)"

        def published(_: Any) -> bool:
            with engine.connect() as conn:
                return conn.execute(
                    text("SELECT published_at IS NOT NULL FROM eventing.outbox WHERE id = :id"),
                    {"id": row_id},
                ).scalar_one()

        until(browser, "the relay to publish the requeued row", published, 30)
        until(browser, "the outbox view without it", lambda b: not b.find_elements(By.CSS_SELECTOR, row_css))
    finally:
        engine.dispose()


def test_actions_are_refused_to_other_sites_and_without_the_consoles_header(suite: LocalSuite) -> None:
    url = f"{suite.api}/console/api/outbox/requeue"
    own = {"Content-Type": "application/json", "X-Orderflow-Console": "1"}
    # a form or a simple request from any page: no console header
    assert http("POST", url, body={"all": True}).status == 403
    # a script on another site (it could only add the header after a preflight)
    assert (
        http("POST", url, body={"all": True}, headers={**own, "Origin": "http://evil.example"}).status == 403
    )
    assert (
        http("POST", url, body={"all": True}, headers={**own, "Sec-Fetch-Site": "cross-site"}).status == 403
    )
    # a name that resolves to loopback (DNS rebinding): not this server's name
    assert http("GET", f"{suite.api}/console/", headers={"Host": "evil.example"}).status == 421
    # the preflight is refused, without the API's CORS headers
    preflight = http(
        "OPTIONS",
        url,
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-orderflow-console",
        },
    )
    assert preflight.status == 405 and "access-control-allow-origin" not in preflight.headers
    # the console's own request goes through (nothing parked: nothing requeued)
    answer = http("POST", url, body={"ids": [-1]}, headers={**own, "Origin": suite.api})
    assert answer.status == 200 and answer.body["requeued"] == [], answer.body
    page = http("GET", f"{suite.api}/console/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_journey_as_mermaid_reads_back_as_the_orders_sequence(
    suite: LocalSuite, customer: tuple[str, str], sku: str
) -> None:
    token, _ = customer
    suite.stock(sku, on_hand=5)
    order_id = suite.place(token, [{"sku": sku, "quantity": 1}]).body["orderId"]
    assert suite.wait_settled(token, order_id)["status"] == "SHIPPING"

    def messages() -> mermaid.Diagram:
        return mermaid.parse(orderflow(suite, "journey", order_id, "--format", "mermaid").stdout)

    expected = {
        ("api", "bus", "OrderCreated"),
        ("bus", "inventory", "OrderCreated"),
        ("bus", "notifications", "OrderCreated"),
        ("inventory", "bus", "InventoryReserved"),
        ("bus", "shipping", "InventoryReserved"),
        ("bus", "status", "InventoryReserved"),
        ("shipping", "bus", "ShipmentRequested"),
        ("bus", "status", "ShipmentRequested"),
        ("status", "bus", "OrderStatusChanged"),
    }

    def pairs(d: mermaid.Diagram) -> set[tuple[str, str, str]]:
        return {(a, b, mermaid.unescape(t).split(" ")[1]) for a, _, b, t in d.messages}

    diagram = wait_for(messages, lambda d: expected <= pairs(d), 30, "every arrow of a shipping order", suite)
    assert diagram.participants == {
        "api": "orders API",
        "bus": "bus",
        "inventory": "inventory",
        "notifications": "notifications",
        "shipping": "shipping",
        "status": "order status",
    }
    assert pairs(diagram) == expected  # and nothing else: no failure, no other event
    notes = [mermaid.unescape(t).split(" ", 1)[1] for _, t in diagram.notes]
    for note in ("status PENDING → CONFIRMED", "status CONFIRMED → SHIPPING", "shipment REQUESTED"):
        assert note in notes, notes
