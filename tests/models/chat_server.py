"""A real local HTTP server speaking the OpenAI chat-completions protocol, for adapter tests.

Behaviour is scripted per prompt (the last user message), so it stays deterministic when a batch
arrives concurrently in any order:

    with ChatServer() as server:
        server.script("flaky", Reply.error(500), Reply.ok("fine"))  # 500 first, then "fine" forever
        server.script("down", Reply.error(500))                     # the last reply repeats
        ...  # unscripted prompts get Reply.ok(f"echo: {prompt}")

Every request is recorded (path, headers, parsed JSON body) and the peak number of requests being
handled at once is tracked, to check a client's concurrency bound. Any path ending in /chat/completions is
served, so a redirect may point at another path of the same server.

    server.script("moved", Reply.redirect(other.base_url + "/chat/completions"), Reply.ok("here"))
    server.script("leak", Reply.echo_header("Authorization"))     # the answer quotes the request's header
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0  # wait before answering (to overlap requests, or outlast a client timeout)
    echo: str | None = None  # a request header quoted in the answer (content and id), or in the error body

    @classmethod
    def ok(cls, content: str, prompt_tokens: int = 10, completion_tokens: int = 5, delay_s: float = 0.0) -> "Reply":
        return cls.json(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            delay_s=delay_s,
        )

    @classmethod
    def json(cls, obj, status: int = 200, delay_s: float = 0.0) -> "Reply":
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json"}, delay_s)

    @classmethod
    def error(cls, status: int, retry_after: str | None = None) -> "Reply":
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status, json.dumps({"error": {"message": f"scripted {status}"}}).encode(), headers)

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> "Reply":
        return cls(status, b"", {"Location": location})

    @classmethod
    def echo_header(cls, header: str, status: int = 200) -> "Reply":
        return cls(status, echo=header)

    def rendered(self, request_headers) -> "Reply":
        """This reply with the echoed header's value filled in."""
        if self.echo is None:
            return self
        value = request_headers.get(self.echo, "")
        if self.status != 200:
            return Reply(self.status, json.dumps({"error": {"message": f"bad {self.echo}: {value}"}}).encode(),
                         {"Content-Type": "application/json"})
        reply = Reply.ok(f"you sent {self.echo}: {value}")
        body = json.loads(reply.body)
        body["id"] = f"chatcmpl-{value}"
        return Reply.json(body)

    @classmethod
    def raw(cls, text: str, status: int = 200) -> "Reply":
        return cls(status, text.encode(), {"Content-Type": "text/plain"})


@dataclass
class Recorded:
    path: str
    headers: dict
    body: dict | None  # None if the request body was not JSON


class ChatServer:
    def __init__(self):
        self.requests: list[Recorded] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()  # wakes delayed handlers at shutdown
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # don't wait for a handler still "slowly" answering a timed-out client
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, prompt: str, *replies: Reply) -> None:
        """Replies for requests whose last message content is `prompt`, in order; the last one repeats."""
        assert replies
        with self._lock:
            self._scripts[prompt] = list(replies)

    def requests_for(self, prompt: str) -> list[Recorded]:
        return [r for r in self.requests if r.body and r.body["messages"][-1]["content"] == prompt]

    def start(self) -> "ChatServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_reply(self, body: dict | None) -> Reply:
        try:
            prompt = body["messages"][-1]["content"]
        except (KeyError, IndexError, TypeError):
            return Reply.error(400)
        with self._lock:
            queue = self._scripts.get(prompt)
            if not queue:
                return Reply.ok(f"echo: {prompt}")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with server._lock:
                    server.requests.append(Recorded(self.path, dict(self.headers), body))
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    served = self.path.split("?")[0].endswith("/chat/completions")
                    reply = server._next_reply(body).rendered(self.headers) if served else Reply.error(404)
                    if reply.delay_s:
                        server._closing.wait(reply.delay_s)
                finally:
                    # Leave the in-flight count before answering: once the client has its answer it may
                    # send its next request, which must not overlap this one in the count.
                    with server._lock:
                        server._in_flight -= 1
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (timeout) and closed the socket

            def do_GET(self):  # recorded too: a client that turns a redirected POST into a GET shows here
                with server._lock:
                    server.requests.append(Recorded(self.path, dict(self.headers), None))
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep test output quiet
                pass

        return Handler
