"""An online shop's returns: a multi-source example whose sources are as messy as real exports.

Orders (CSV), customers (a SQLite table), a product price history (JSON lines) and a carrier's
delivery export (a Windows-1252 CSV written the German way) are joined into one table of orders,
and the model predicts which orders are sent back. Every defect class mlship handles is in these
files on purpose, at a known line, so the example doubles as a walk-through of what happens to
each: see README.md beside this file. Generated from a fixed seed, so every machine gets the same
bytes, the same quarantine and the same model.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

HERE = Path(__file__).parent
SPEC_FILE = "pipeline.yaml"

COUNTRIES = ["DE", "FR", "NL", "AT", "BE"]
TIERS = ["basic", "plus", "premium"]
# One carrier's name needs Windows-1252 (or Latin-1): a UTF-8 reader would fail on its bytes.
CARRIERS = ["DHL", "Hermes", "DPD", "Grün Kurier"]
N_PRODUCTS = 40
BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Order:
    """One order as the shop recorded it, before any export got its hands on it."""

    order_id: int
    customer: int
    product: int
    ordered_at: datetime
    quantity: int
    amount: float
    discount: float
    country: str
    carrier: str
    weight_kg: float
    shipping_cost: float
    returned: bool


def _customers(rng: np.random.Generator, n: int) -> list[tuple[int, str, str]]:
    """(age, tier, signed up at) of each customer."""
    ages = np.clip(rng.normal(41, 13, n).round(), 18, 90).astype(int)
    tiers = rng.choice(TIERS, n, p=[0.6, 0.3, 0.1])
    days = rng.integers(30, 1500, n)
    return [
        (int(age), str(tier), (START - timedelta(days=int(day), minutes=int(day) * 7)).isoformat())
        for age, tier, day in zip(ages, tiers, days, strict=True)
    ]


def _prices(rng: np.random.Generator) -> np.ndarray:
    return np.round(rng.lognormal(3.3, 0.7, N_PRODUCTS), 2)  # about 27, from 5 to 150


def _orders(
    rng: np.random.Generator, n: int, customers: list[tuple[int, str, str]], prices: np.ndarray
) -> list[Order]:
    orders = []
    for i in range(n):
        customer = int(rng.integers(len(customers)))
        # The last two products are rare on purpose: their prices are broken (_write_prices).
        product = int(rng.integers(N_PRODUCTS - 2))
        if i in (50, 60):
            product = N_PRODUCTS - (1 if i == 50 else 2)
        quantity = int(min(rng.geometric(0.55), 8))
        if i == 26:  # a bulk order of the dearest product: the export writes "$1,234.50"
            product, quantity = int(np.argmax(prices[: N_PRODUCTS - 2])), 12
        discount = float(rng.choice([0.0, 0.0, 0.05, 0.1, 0.15, 0.25, 0.4]))
        amount = round(float(prices[product]) * quantity * (1 - discount), 2)
        country = str(rng.choice(COUNTRIES, p=[0.45, 0.2, 0.15, 0.1, 0.1]))
        carrier = str(rng.choice(CARRIERS, p=[0.4, 0.3, 0.2, 0.1]))
        weight = round(float(rng.gamma(2.0, 0.9)) * quantity + 0.2, 1)
        if i == 24:
            weight = 1250.5  # a pallet: the export writes it "1.250,5"
        cost = round(3.99 + 0.6 * min(weight, 40.0) + (2.0 if country != "DE" else 0.0), 2)
        age, tier, _ = customers[customer]
        logit = (
            -2.2
            + 3.5 * discount
            + 0.012 * (float(prices[product]) - 27)
            + 0.25 * (quantity - 1)
            + 0.6 * (carrier == "Hermes")
            + 0.5 * (country == "FR")
            - 0.7 * (tier == "premium")
            - 0.02 * (age - 41)
            + rng.normal(0, 0.4)
        )
        returned = bool(rng.random() < 1 / (1 + np.exp(-logit)))
        at = START + timedelta(minutes=int(i * 97 + rng.integers(0, 60)))
        orders.append(
            Order(
                1001 + i, customer, product, at, quantity, amount, discount, country, carrier,
                weight, cost, returned,
            )
        )  # fmt: skip
    return orders


def _customer_id(index: int) -> str:
    return f"K{10001 + index}"


def _sku(index: int) -> str:
    return f"P{101 + index}"


def _money(value: float) -> str:
    return f'"${value:,.2f}"'


def _timestamp(at: datetime, order_id: int) -> str:
    """ISO 8601 as three systems of the shop write it: with ``Z``, ``+01:00`` or ``+0530``."""
    if order_id % 3 == 0:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if order_id % 3 == 1:
        return at.astimezone(timezone(timedelta(hours=1))).isoformat()
    return at.astimezone(timezone(timedelta(hours=5, minutes=30))).strftime("%Y-%m-%d %H:%M:%S%z")


def _order_line(order: Order) -> list[str]:
    return [
        str(order.order_id),
        _customer_id(order.customer),
        _sku(order.product),
        _timestamp(order.ordered_at, order.order_id),
        str(order.quantity),
        _money(order.amount),
        f"{order.discount * 100:g}%",
        order.country,
        "yes" if order.returned else "no",
    ]


ORDER_HEADER = [
    "order_id",
    "customer_id",
    "sku",
    "ordered_at",
    "quantity",
    "amount",
    "discount",
    "country",
    "returned",
]


def _write_orders(path: Path, orders: list[Order]) -> None:
    """The shop's order export. Broken on purpose (line = index + 2, the header is line 1):

    * quantities written ``n/a``, ``?`` and empty (declared missing), and ``two`` (quarantined);
    * a quantity of 0 and one of 40 (the range check);
    * a country ``XX`` (the allowed-values check), discounts of 60% (a warn check);
    * order 1010 twice, byte for byte (collapsed and counted);
    * order 1020 twice with different amounts (both copies quarantined).
    """
    rows = [_order_line(order) for order in orders]
    rows[3][4] = "n/a"
    rows[4][4] = "?"
    rows[5][4] = ""
    rows[6][4] = "two"
    rows[7][4] = "0"
    rows[8][4] = "40"
    rows[11][7] = "XX"
    rows[12][6] = "60%"
    rows[13][6] = "60%"
    copy = list(rows[9])  # order 1010, exported twice
    conflicting = list(rows[19])  # order 1020, re-exported after a price correction
    conflicting[5] = _money(orders[19].amount + 10)
    rows.insert(30, copy)
    rows.insert(40, conflicting)
    text = ",".join(ORDER_HEADER) + "\n" + "".join(",".join(row) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8", newline="")


def _write_customers(path: Path, customers: list[tuple[int, str, str]]) -> None:
    """The CRM's ``customers`` table. SQLite lets its INTEGER column ``age`` hold text, and the
    CRM's forms did: ``n/a`` (not declared, so read as missing with a warning), ``?`` and an
    empty string (declared), ``forty`` (quarantined). Customer K10011 is stored twice, as exact
    copies (collapsed)."""
    path.unlink(missing_ok=True)
    rows: list[tuple[str, object, str, str]] = [
        (_customer_id(i), age, tier, signed) for i, (age, tier, signed) in enumerate(customers)
    ]
    rows[2] = (rows[2][0], "n/a", rows[2][2], rows[2][3])
    rows[3] = (rows[3][0], "?", rows[3][2], rows[3][3])
    rows[4] = (rows[4][0], "", rows[4][2], rows[4][3])
    rows[5] = (rows[5][0], "forty", rows[5][2], rows[5][3])
    rows.insert(20, rows[10])
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE customers (customer_id TEXT, age INTEGER, tier TEXT, signed_up_at TEXT)"
        )
        connection.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", rows)
    connection.close()


def _write_prices(path: Path, prices: np.ndarray) -> None:
    """The catalogue's price history: each change of a product's price is a new line, so the
    newest line per product is its price (``newest_by``). Broken on purpose: an old
    price written ``"n/a"`` (declared missing), and the newest prices of the two rare products:
    a JSON ``true`` (not a number) and a negative one (the range check, on the joined rows)."""
    lines = []
    for index, price in enumerate(prices):
        sku = _sku(index)
        old: dict[str, object] = {
            "sku": sku,
            "price": round(float(price) * 1.1, 2),
            "updated_at": "2026-01-05T09:00:00Z",
        }
        new: dict[str, object] = {
            "sku": sku,
            "price": float(price),
            "updated_at": "2026-02-20T09:00:00+01:00",
        }
        if index == 4:
            old["price"] = "n/a"
        if index == N_PRODUCTS - 2:
            new["price"] = True
        if index == N_PRODUCTS - 1:
            new["price"] = -float(price)
        # Newest first for every other product: the file's order says nothing about age.
        lines.extend([new, old] if index % 2 else [old, new])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def _german_number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}".replace(",", "_").replace(".", ",").replace("_", ".")


def _write_deliveries(path: Path, orders: list[Order]) -> None:
    """The carrier hub's export: Windows-1252, ``;`` between fields, ``1.234,5`` numbers, costs in
    ``€``, Berlin wall-clock times as ``dd.mm.yyyy HH:MM``. Broken on purpose: one shipping time
    that does not exist (31 February), and order 1003 sent twice with different weights, of
    which the hub's export keeps the later (``keep_last``)."""
    lines = ["order_id;carrier;shipped_at;weight_kg;shipping_cost"]
    for order in orders:
        shipped = (order.ordered_at + timedelta(hours=20)).astimezone(BERLIN)
        lines.append(
            f"{order.order_id};{order.carrier};{shipped:%d.%m.%Y %H:%M};"
            f"{_german_number(order.weight_kg, 1)};"
            f"{_german_number(order.shipping_cost, 2)} €"
        )
    lines[16] = lines[16].replace(lines[16].split(";")[2], "31.02.2026 10:00")
    lines.insert(30, lines[3].replace(";" + lines[3].split(";")[3] + ";", ";9,9;"))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))


SCORING_HEADER = [
    "order_id",
    "sku",
    "quantity",
    "amount",
    "discount",
    "country",
    "age",
    "tier",
    "price",
    "carrier",
    "weight_kg",
    "shipping_cost",
]


def _scoring_fields(
    order: Order, customers: list[tuple[int, str, str]], prices: np.ndarray
) -> list[str]:
    age, tier, _ = customers[order.customer]
    quantity = "n/a" if order.order_id % 11 == 0 else str(order.quantity)
    fields = [
        str(order.order_id),
        _sku(order.product),
        quantity,
        _money(order.amount),
        f"{order.discount * 100:g}%",
        order.country,
        str(age),
        tier,
        f"{prices[order.product]:.2f}",
        order.carrier,
        f"{order.weight_kg:.1f}",
        f"{order.shipping_cost:.2f}",
    ]
    return fields


def _write_scoring(
    data_dir: Path, orders: list[Order], customers: list[tuple[int, str, str]], prices: np.ndarray
) -> None:
    """Orders to score, flat, written as the shop writes them (``$1,234.50``, ``15%``, ``n/a``):
    ``new_orders.csv`` all readable; ``late_orders.csv`` with an amount that is not a number on
    its fourth line, which ``mlship predict`` reports by row and line."""
    header = ",".join(SCORING_HEADER) + "\n"
    rows = [_scoring_fields(order, customers, prices) for order in orders]
    (data_dir / "new_orders.csv").write_text(
        header + "".join(",".join(row) + "\n" for row in rows), encoding="utf-8"
    )
    late = [list(row) for row in rows[:5]]
    late[2][3] = "about $40"
    (data_dir / "late_orders.csv").write_text(
        header + "".join(",".join(row) + "\n" for row in late), encoding="utf-8"
    )


def write_project(directory: Path, n: int = 1500, seed: int = 11) -> Path:
    """Write the example into ``directory``: a spec, four sources and two files to score.

    * ``data/orders.csv``: the shop's orders (UTF-8), the ``returned`` label included;
    * ``data/crm.sqlite``: the CRM's ``customers`` table (a SQL source);
    * ``data/prices.jsonl``: the catalogue's price history, one line per price change;
    * ``data/deliveries.csv``: the carrier hub's export, Windows-1252 and German number format;
    * ``data/new_orders.csv`` and ``data/late_orders.csv``: orders to score.

    Returns the path of the spec file.
    """
    rng = np.random.default_rng(seed)
    data_dir = directory / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    customers = _customers(rng, max(n // 3, 30))
    prices = _prices(rng)
    orders = _orders(rng, n + 200, customers, prices)
    train, new = orders[:n], orders[n:]
    _write_orders(data_dir / "orders.csv", train)
    _write_customers(data_dir / "crm.sqlite", customers)
    _write_prices(data_dir / "prices.jsonl", prices)
    _write_deliveries(data_dir / "deliveries.csv", train)
    _write_scoring(data_dir, new, customers, prices)
    spec_path = directory / SPEC_FILE
    shutil.copyfile(HERE / SPEC_FILE, spec_path)
    return spec_path
