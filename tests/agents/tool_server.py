"""A local HTTP server speaking the OpenAI chat-completions tool-call protocol: a scripted "agent model".

It reads the conversation it is sent and answers like a tool-using model would:
* the last message is the user's: an order id in any user message -> a `lookup_order` tool call (with a refund
  request, after the lookup result arrives, a `refund_order` call); no order id -> a final answer asking for it;
* the last message is a tool result: the next call, or a final answer built from the results.
Special prompts: "loop" calls lookup_order forever (to hit max_steps); "garbled" sends arguments that are not
JSON; "ghost" calls a tool that was not declared. A prompt containing "(interrupted)" gets an HTTP 500 on its
second turn the first time it is asked (a loop cut short). Every request body is recorded.
"""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDER = re.compile(r"\bA-\d{4}\b")


def _call(n: int, name: str, arguments) -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": text}}


def reply(messages: list[dict]) -> dict:
    """The assistant message for this conversation."""
    users = " ".join(m["content"] for m in messages if m["role"] == "user")
    ask = [m for m in messages if m["role"] == "user"][-1]["content"]
    results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
    n = len(results) + 1
    if ask == "loop":
        return {"role": "assistant", "content": None, "tool_calls": [_call(n, "lookup_order", {"order_id": "A-1001"})]}
    if ask == "garbled" and not results:
        return {"role": "assistant", "content": None, "tool_calls": [_call(n, "lookup_order", "{order_id: A-1")]}
    if ask == "ghost" and not results:
        return {"role": "assistant", "content": None, "tool_calls": [_call(n, "delete_everything", {})]}
    order = ORDER.search(users)
    if order is None:
        if results:
            return {"role": "assistant", "content": f"That did not work: {results[-1]}"}
        return {"role": "assistant", "content": "Which order? It looks like A-1234."}
    if not results:
        return {"role": "assistant", "content": "Let me look that up.",
                "tool_calls": [_call(n, "lookup_order", {"order_id": order.group(0)})]}
    last = results[-1]
    if "error" in last:
        return {"role": "assistant", "content": f"Sorry, that failed: {last['error']}"}
    if "refund" in ask.lower() and "refund_id" not in last:
        return {"role": "assistant", "content": None, "tool_calls": [_call(n, "refund_order", {
            "order_id": last["id"], "amount": last["total"], "reason": "damaged"})]}
    if "refund_id" in last:
        return {"role": "assistant", "content": f"I have refunded ${last['amount']:.2f} for order {last['order_id']}."}
    return {"role": "assistant", "content": f"Your order {last['id']} is {last['status']}."}


class ToolServer:
    def __init__(self):
        self.requests: list[dict] = []
        self.interrupted: set[str] = set()
        outer = self

        def interrupt(messages: list[dict]) -> bool:
            ask = [m for m in messages if m["role"] == "user"][-1]["content"]
            if "(interrupted)" not in ask or messages[-1]["role"] != "tool" or ask in outer.interrupted:
                return False
            outer.interrupted.add(ask)
            return True

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                if interrupt(body["messages"]):
                    self.send_error(500, "interrupted")
                    return
                message = reply(body["messages"])
                data = json.dumps({"id": "chatcmpl-tools", "object": "chat.completion", "choices": [{
                    "index": 0, "message": message,
                    "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                    "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "ToolServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
