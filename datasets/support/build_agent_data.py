"""Build the bundled support agent domain: orders and accounts the tools read, and the golden agent set.

Hand-written and deterministic (no downloads): rerun `python datasets/support/build_agent_data.py` after editing;
it rewrites orders.jsonl, accounts.jsonl and golden_agent.jsonl beside it and checks the invariants the tests rely
on (60+ tasks, 10 where the refund tool must not be called, every expected id exists).
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATUSES = ["processing", "shipped", "in transit", "delivered"]
REASONS = ["damaged", "broken", "wrong item", "never arrived", "arrived late"]
SAYS = {"damaged": "it arrived damaged", "broken": "it arrived broken", "wrong item": "it was the wrong item",
        "never arrived": "it never arrived", "arrived late": "it arrived late"}


def orders() -> list[dict]:
    out = []
    for n in range(1, 46):
        oid = f"A-{1000 + n}"
        total = round(9.5 + (n * 7.37) % 180, 2)
        if n <= 15:  # status questions
            status, days, refunded = STATUSES[n % 4], (n % 4 == 3) * (n + 2), False
        elif n <= 30:  # refundable: delivered within the window
            status, days, refunded = "delivered", 2 + n % 25, False
        elif n <= 40:  # not refundable: too old, already refunded or not delivered
            kind = n % 3
            status = "shipped" if kind == 2 else "delivered"
            days, refunded = (45 + n if kind == 0 else 5), kind == 1
        else:
            status, days, refunded = "delivered", 3, False
        out.append({"id": oid, "customer": f"C-{200 + n % 20 + 1}", "status": status, "total": total,
                    "delivered_days_ago": days if status == "delivered" else None, "refunded": refunded})
    return out


ACCOUNTS = [
    ("email", "mia.k@example.org"), ("phone", "+44 20 7946 0958"), ("address", "12 Harbour Row, Bristol"),
    ("email", "jo.nakamura@example.net"), ("address", "Königstraße 5, München"), ("phone", "+1 415 555 0172"),
    ("email", "lea.dubois@example.fr"), ("address", "Calle Mayor 3, Zaragoza"), ("phone", "+81 3 1234 5678"),
    ("email", "sam.o@example.com"), ("address", "4 Rue de l'Église, Lyon"), ("email", "zoe.angstrom@example.se"),
    ("phone", "+49 30 901820"), ("address", "88 Ōdōri, Sapporo"), ("email", "raj.p@example.in"),
]


def accounts() -> list[dict]:
    return [{"id": f"C-{201 + i}", "name": f"Customer {201 + i}"} for i in range(20)]


def eq(path: str, value) -> dict:
    return {"path": path, "equals": value}


def cases(order_rows: list[dict]) -> list[dict]:
    by_id = {o["id"]: o for o in order_rows}
    out = []
    for n in range(1, 16):
        o = by_id[f"A-{1000 + n}"]
        ask = ["Where is my order {id}?", "What's the status of {id}?", "Has order {id} shipped yet?"][n % 3]
        out.append({"id": f"status-{n:02d}", "input": ask.format(id=o["id"]), "expected": o["status"],
                    "tags": ["order_status"],
                    "agent": {"tool_calls": [{"name": "lookup_order", "arguments": [eq("$.order_id", o["id"])]}],
                              "order": "exact", "max_steps": 3}})
    for n in range(16, 31):
        o = by_id[f"A-{1000 + n}"]
        reason = REASONS[n % len(REASONS)]
        task = {"tool_calls": [
            {"name": "lookup_order", "arguments": [eq("$.order_id", o["id"])]},
            {"name": "refund_order", "arguments": [eq("$.order_id", o["id"]),
                                                   {"path": "$.amount", "approx": o["total"], "tolerance": 0.01},
                                                   {"path": "$.reason", "regex": reason.split()[0]}]}],
            "order": "exact", "max_steps": 4}
        case = {"id": f"refund-{n - 15:02d}", "expected": f"{o['total']:.2f}", "tags": ["refund"], "agent": task}
        if n > 25:  # multi-turn: the order number was given earlier in the conversation
            case["messages"] = [{"role": "user", "content": f"Hi, I have a problem with order {o['id']}."},
                                {"role": "assistant", "content": "Sorry to hear that. What happened?"}]
            case["input"] = f"{SAYS[reason].capitalize()}. I want my money back."
            case["tags"] = ["refund", "multi_turn"]
        else:
            case["input"] = f"Please refund order {o['id']}, {SAYS[reason]}."
        out.append({k: case[k] for k in ("id", "input", "expected", "tags", "messages", "agent") if k in case})
    for n in range(31, 41):
        o = by_id[f"A-{1000 + n}"]
        out.append({"id": f"no-refund-{n - 30:02d}", "input": f"I want a refund for order {o['id']}, it arrived damaged.",
                    "expected": "not eligible", "tags": ["refund", "must_not_refund"],
                    "agent": {"tool_calls": [{"name": "lookup_order", "arguments": [eq("$.order_id", o["id"])]}],
                              "order": "exact", "forbidden_tools": ["refund_order"], "max_steps": 3}})
    for i, (field, value) in enumerate(ACCOUNTS):
        account = f"C-{201 + i}"
        task = {"tool_calls": [{"name": "change_account", "arguments": [
            eq("$.account_id", account), eq("$.field", field), eq("$.value", value)]}],
            "order": "exact", "forbidden_tools": [], "max_steps": 2}
        case = {"id": f"account-{i + 1:02d}", "expected": value, "tags": ["account"], "agent": task}
        if i >= 12:  # multi-turn: the account number was given earlier
            case["messages"] = [{"role": "user", "content": f"Hello, my account number is {account}."},
                                {"role": "assistant", "content": "Thanks! How can I help?"}]
            case["input"] = f"Please change my {field} to {value}."
            case["tags"] = ["account", "multi_turn"]
        else:
            case["input"] = f"Please change the {field} on account {account} to {value}."
        del task["forbidden_tools"]
        out.append({k: case[k] for k in ("id", "input", "expected", "tags", "messages", "agent") if k in case})
    for i, ask in enumerate(["What is your refund policy?", "How long do I have to ask for a refund?",
                             "How many days do I have to return something?", "What's the policy on refunds?",
                             "Can you explain the refund policy?"]):
        out.append({"id": f"policy-{i + 1:02d}", "input": ask, "expected": "30 days", "tags": ["policy"],
                    "agent": {"tool_calls": [], "order": "exact", "max_steps": 1}})
    return out


def main() -> None:
    order_rows = orders()
    golden = cases(order_rows)
    ids = {o["id"] for o in order_rows}
    assert len(golden) >= 60, len(golden)
    assert sum("refund_order" in c["agent"].get("forbidden_tools", []) for c in golden) == 10
    for c in golden:
        for call in c["agent"]["tool_calls"]:
            for check in call.get("arguments", []):
                if check["path"] == "$.order_id":
                    assert check["equals"] in ids, c["id"]
    for name, rows in (("orders", order_rows), ("accounts", accounts()), ("golden_agent", golden)):
        (HERE / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                            encoding="utf-8")
    print(f"{len(order_rows)} orders, {len(golden)} agent cases")


if __name__ == "__main__":
    main()
