"""Rule-based support agents for the bundled agent domain: they read a request, call tools and answer,
recording their trajectory (engine/agents/trajectory.py). Deterministic, offline stand-ins for LLM agents.

Behaviour switches (params) make the demo's baseline and challengers:
* `account_changes`: carries out account changes (else answers that it cannot);
* `read_conversation`: finds an order or account id in earlier messages (else asks for it);
* `lookup_before_refund`: looks the order up and checks eligibility before refunding (the fast challenger
  skips it, refunding orders it must not).
"""
from __future__ import annotations

import re
import time
from typing import Any

from engine.demo_models.agent_tools import SupportTools, ToolError, eligible

ORDER_ID = re.compile(r"\bA-\d{4}\b")
ACCOUNT_ID = re.compile(r"\bC-\d{3}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+?\d[\d ]{7,}\d")
REFUND_WORDS = re.compile(r"\b(refund|money back|reimburse)", re.I)
POLICY_WORDS = re.compile(r"\b(policy|how long|how many days)\b", re.I)
REASON = re.compile(r"\b(damaged|broken|arrived late|wrong item|never arrived|changed my mind)\b", re.I)
POLICY_ANSWER = "You can request a refund within 30 days of delivery."


class SupportAgent:
    """`SupportAgent(**params)(requests) -> [{"output", "trajectory"}]`."""

    def __init__(self, account_changes: bool = True, read_conversation: bool = True,
                 lookup_before_refund: bool = True, orders_path: str = "bundled:support/orders.jsonl",
                 accounts_path: str = "bundled:support/accounts.jsonl"):
        self.account_changes = account_changes
        self.read_conversation = read_conversation
        self.lookup_before_refund = lookup_before_refund
        self.paths = (orders_path, accounts_path)

    def __call__(self, requests) -> list[dict]:
        return [self.answer(r.input_text, r.messages) for r in requests]

    def answer(self, text: str, messages=()) -> dict:
        tools = SupportTools(*self.paths)  # fresh state per case: one conversation's refunds stay in it
        steps: list[dict] = []

        def use(name: str, **arguments: Any) -> dict | None:
            started = time.perf_counter()
            step = {"type": "tool_call", "name": name, "arguments": arguments, "id": f"call_{len(steps) + 1}"}
            try:
                step["result"] = getattr(tools, name)(**arguments)
            except ToolError as e:
                step["error"] = str(e)
            step["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            steps.append(step)
            return step.get("result")

        history = " ".join(m["content"] for m in messages if m["role"] == "user") if self.read_conversation else ""
        output = self._act(text, f"{history} {text}", use)
        return {"output": output, "trajectory": steps}

    def _act(self, text: str, seen: str, use) -> str:
        if POLICY_WORDS.search(text) and not ORDER_ID.search(seen):
            return POLICY_ANSWER
        if re.search(r"\b(change|update)\b", text, re.I) and re.search(r"\b(email|phone|address)\b", text, re.I):
            return self._change_account(text, seen, use)
        order_id = ORDER_ID.search(seen)
        if order_id is None:
            return "Could you tell me your order number (it looks like A-1234)?"
        order_id = order_id.group(0)
        if REFUND_WORDS.search(text):
            return self._refund(order_id, seen, use)
        order = use("lookup_order", order_id=order_id)
        if order is None:
            return f"I could not find order {order_id}."
        return f"Your order {order_id} is {order['status']}."

    def _refund(self, order_id: str, seen: str, use) -> str:
        reason = REASON.search(seen)
        reason = reason.group(0).lower() if reason else "customer request"
        amount = None
        if self.lookup_before_refund:
            order = use("lookup_order", order_id=order_id)
            if order is None:
                return f"I could not find order {order_id}."
            ok, why = eligible(order)
            if not ok:
                return f"Order {order_id} is not eligible for a refund: {why}."
            amount = order["total"]
        arguments = {"order_id": order_id, "reason": reason, **({"amount": amount} if amount is not None else {})}
        refund = use("refund_order", **arguments)
        if refund is None:
            return f"The refund for order {order_id} failed; a colleague will follow up."
        return f"I have refunded ${refund['amount']:.2f} for order {order_id}."

    def _change_account(self, text: str, seen: str, use) -> str:
        if not self.account_changes:
            return "I'm sorry, I can't change account details in chat; please use the account settings page."
        account = ACCOUNT_ID.search(seen)
        if account is None:
            return "Could you tell me your account number (it looks like C-123)?"
        field = next(f for f in ("email", "phone", "address") if re.search(rf"\b{f}\b", text, re.I))
        match = {"email": EMAIL, "phone": PHONE}.get(field)
        value = match.search(text) if match else re.search(r"\bto (.+?)\.?$", text)
        if value is None:
            return f"What should the new {field} be?"
        value = value.group(1) if field == "address" else value.group(0)
        result = use("change_account", account_id=account.group(0), field=field, value=value)
        if result is None:
            return f"I could not update the {field} of account {account.group(0)}."
        return f"Your {field} has been updated to {value}."
