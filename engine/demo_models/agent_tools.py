"""The bundled support domain's tools: order lookup, refund and account change, over small JSONL tables.

They are plain Python callables (keyword arguments in, a JSON-serialisable result out, an exception for a
failed call), so the same functions serve the demo's rule-based agents (engine/demo_models/support_agent.py)
and, named by `_target_`, the chat_completions adapter's tool loop. State lives in memory per `SupportTools`
object: a refund marks the order refunded for that agent's later calls, never the files.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from engine.paths import resolve_data_path

REFUND_WINDOW_DAYS = 30
ACCOUNT_FIELDS = ("email", "phone", "address")


class ToolError(Exception):
    """A tool call that failed (unknown order, invalid field): the agent sees the message as the call's error."""


@lru_cache(maxsize=8)
def _rows(path: str) -> dict[str, dict]:
    file = resolve_data_path(path, Path.cwd())
    rows = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


class SupportTools:
    """The three tools over the bundled orders and accounts (`bundled:support/orders.jsonl`, `accounts.jsonl`)."""

    def __init__(self, orders_path: str = "bundled:support/orders.jsonl",
                 accounts_path: str = "bundled:support/accounts.jsonl"):
        self.orders = _rows(orders_path)  # shared and never mutated: a refund is recorded in self.refunded
        self.accounts = _rows(accounts_path)
        self.refunded: set[str] = set()

    def lookup_order(self, order_id: str) -> dict:
        """The order's status, total, delivery age in days and whether it was refunded."""
        order = self.orders.get(order_id)
        if order is None:
            raise ToolError(f"no order {order_id}")
        return {**order, "refunded": order["refunded"] or order_id in self.refunded}

    def refund_order(self, order_id: str, amount: float | None = None, reason: str = "") -> dict:
        """Refund the order (the whole total when no amount is given). It trusts the caller: checking that the
        order is eligible is the agent's job, which is why a refund without a lookup is a defect."""
        order = self.orders.get(order_id)
        if order is None:
            raise ToolError(f"no order {order_id}")
        value = float(order["total"] if amount is None else amount)
        self.refunded.add(order_id)
        return {"refund_id": f"R-{order_id}", "order_id": order_id, "amount": round(value, 2), "reason": reason}

    def change_account(self, account_id: str, field: str, value: str) -> dict:
        """Change one contact field (email, phone, address) of an account."""
        if account_id not in self.accounts:
            raise ToolError(f"no account {account_id}")
        if field not in ACCOUNT_FIELDS:
            raise ToolError(f"field must be one of {', '.join(ACCOUNT_FIELDS)}, not {field!r}")
        return {"account_id": account_id, "field": field, "value": value, "updated": True}


def eligible(order: dict) -> tuple[bool, str]:
    """Whether a looked-up order may be refunded, and why not."""
    if order["refunded"]:
        return False, "it was already refunded"
    if order["status"] != "delivered":
        return False, f"it is {order['status']}, not delivered yet"
    if order["delivered_days_ago"] > REFUND_WINDOW_DAYS:
        return False, f"it was delivered {order['delivered_days_ago']} days ago (the window is {REFUND_WINDOW_DAYS} days)"
    return True, ""


# The tools as plain functions, for the chat_completions tool loop (`_target_`). Each call sees the bundled
# tables as they are on disk: a refund does not change what a later lookup returns.
def lookup_order(order_id: str) -> dict:
    """Look an order up by its id (A-1234)."""
    return SupportTools().lookup_order(order_id)


def refund_order(order_id: str, amount: float | None = None, reason: str = "") -> dict:
    """Refund an order (the whole total when no amount is given)."""
    return SupportTools().refund_order(order_id, amount, reason)


def change_account(account_id: str, field: str, value: str) -> dict:
    """Change the email, phone or address of an account (C-123)."""
    return SupportTools().change_account(account_id, field, value)
