"""``orderflow journey`` finds an order by the first characters of its id, as ``orderflow demo``
prints it, on a real database with orders placed through the API."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import pytest

from orderflow.cli import main
from tests.support.local_suite import free_ports

pytestmark = [pytest.mark.db, pytest.mark.aws]

ORDER = json.loads((Path(__file__).resolve().parents[1] / "fixtures/place_order.json").read_text())


@pytest.fixture
def placed(orders_api, catalog, db, tmp_path) -> tuple[list[str], Path]:
    # 17 orders: two of them share a first hex digit whatever their ids (16 digits).
    ids = [orders_api.post("/orders", ORDER).body["orderId"] for _ in range(17)]
    (closed,) = free_ports(1)  # no emulator: the journey notes that it read no dead-letter queue
    state = {"database": db, "aws": f"http://127.0.0.1:{closed}", "bus": "orderflow"}
    (tmp_path / "local.json").write_text(json.dumps(state))
    return ids, tmp_path


def journey(state_dir: Path, ref: str, capsys) -> tuple[int, str, str]:
    code = main(["journey", ref, "--json", "--state-dir", str(state_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_unique_prefix_names_its_order(placed, capsys):
    ids, state_dir = placed
    short = next(i[:8] for i in ids if sum(j.startswith(i[:8]) for j in ids) == 1)
    code, out, err = journey(state_dir, short.upper(), capsys)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["orderId"] == next(i for i in ids if i.startswith(short))
    assert shown["steps"][0]["what"] == "order placed (status PENDING)"
    assert "dead-letter queues not read" in shown["note"]


def test_a_whole_id_still_works(placed, capsys):
    ids, state_dir = placed
    code, out, err = journey(state_dir, ids[3], capsys)
    assert code == 0, err
    assert json.loads(out)["orderId"] == ids[3]


def test_an_ambiguous_prefix_is_refused_with_the_candidates(placed, capsys):
    ids, state_dir = placed
    digit = next(d for d in "0123456789abcdef" if sum(i.startswith(d) for i in ids) > 1)
    code, out, err = journey(state_dir, digit, capsys)
    assert code == 1 and out == ""
    assert f"orderflow journey: {digit} is ambiguous: " in err
    assert "give more characters" in err
    assert min(i for i in ids if i.startswith(digit)) in err  # the candidates, in id order


def test_an_unknown_prefix_says_no_order_has_it(placed, capsys):
    ids, state_dir = placed
    unused = next(
        "".join(p)
        for p in product("0123456789abcdef", repeat=3)
        if not any(i.startswith("".join(p)) for i in ids)
    )
    code, _, err = journey(state_dir, unused, capsys)
    assert code == 1
    assert f"no order id starts with {unused} in this database" in err


@pytest.mark.parametrize("ref", ["order-1", "136d4e4dz", "136d4e4d0", ""])
def test_what_is_not_a_prefix_of_an_id_is_refused_as_such(placed, capsys, ref):
    _, state_dir = placed
    code, _, err = journey(state_dir, ref, capsys)
    assert code == 1
    assert "is not an order id (a UUID, or the first characters of one)" in err
