"""ChatCompletionsAdapter against a real local HTTP server (see chat_server.py).

Waits between retries go to a recording `sleep`, so retry tests are instant and assert the exact waits.
"""
from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from chat_server import Reply

from engine.errors import UserError
from engine.models.base import ModelRequest
from engine.models.http import ChatCompletionsAdapter
from engine.models.spec import ChatCompletionsParams


def req(text: str, case_id: str | None = None) -> ModelRequest:
    return ModelRequest(case_id=case_id or text, input=text, input_text=text)


def make(server_or_url, sleeps: list | None = None, **kwargs) -> ChatCompletionsAdapter:
    base_url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    recorder = sleeps.append if sleeps is not None else (lambda s: pytest.fail(f"unexpected sleep({s})"))
    params = ChatCompletionsParams.of({"base_url": base_url, "model": "test-model", **kwargs})
    return ChatCompletionsAdapter("m", params, sleep=recorder)


def test_success_path(chat_server, monkeypatch):
    monkeypatch.setenv("FLYWHEEL_TEST_KEY", "sk-secret")
    chat_server.script("What is 2+2?", Reply.ok("4", prompt_tokens=1200, completion_tokens=300))
    adapter = make(
        chat_server,
        api_key_env="FLYWHEEL_TEST_KEY",
        temperature=0.7,
        max_tokens=64,
        system_prompt="Answer briefly.",
        price_per_1k_prompt_tokens=0.5,
        price_per_1k_completion_tokens=2.0,
    )
    [resp] = adapter.predict_batch([req("What is 2+2?")])

    assert resp.error is None
    assert resp.output_text == "4"
    assert (resp.prompt_tokens, resp.completion_tokens) == (1200, 300)
    assert resp.cost == pytest.approx(1.2 * 0.5 + 0.3 * 2.0)
    assert resp.latency_ms is not None and resp.latency_ms >= 0
    assert resp.raw["attempts"] == 1

    [recorded] = chat_server.requests
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["Authorization"] == "Bearer sk-secret"
    assert recorded.headers["Content-Type"] == "application/json"
    assert recorded.body == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        "temperature": 0.7,
        "max_tokens": 64,
    }


def test_minimal_request_has_no_auth_system_or_max_tokens(chat_server):
    [resp] = make(chat_server).predict_batch([req("hello")])
    assert resp.output_text == "echo: hello"
    assert resp.cost == 0.0  # free model, usage reported
    [recorded] = chat_server.requests
    assert "Authorization" not in recorded.headers
    assert recorded.body == {"model": "test-model", "messages": [{"role": "user", "content": "hello"}], "temperature": 0.0}


def test_429_retry_after_seconds_is_honoured(chat_server):
    chat_server.script("p", Reply.error(429, retry_after="7"), Reply.ok("done"))
    sleeps = []
    [resp] = make(chat_server, sleeps, backoff_s=0.1).predict_batch([req("p")])
    assert sleeps == [7.0]  # the server's wait, not the 0.1 s backoff
    assert resp.output_text == "done" and resp.raw["attempts"] == 2
    assert len(chat_server.requests) == 2


def test_503_retry_after_http_date_is_honoured(chat_server):
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    chat_server.script("p", Reply.error(503, retry_after=when), Reply.ok("done"))
    sleeps = []
    [resp] = make(chat_server, sleeps, backoff_s=0.1).predict_batch([req("p")])
    assert resp.output_text == "done"
    [waited] = sleeps
    assert 25 <= waited <= 30  # the date has one-second resolution


def test_500_then_success_backs_off(chat_server):
    chat_server.script("p", Reply.error(500), Reply.error(502), Reply.ok("ok"))
    sleeps = []
    [resp] = make(chat_server, sleeps, backoff_s=0.25).predict_batch([req("p")])
    assert resp.output_text == "ok" and resp.error is None
    assert sleeps == [0.25, 0.5]  # exponential
    assert len(chat_server.requests) == 3


def test_500_forever_gives_up_after_max_retries_plus_one_attempts(chat_server):
    chat_server.script("p", Reply.error(500))
    sleeps = []
    [resp] = make(chat_server, sleeps, max_retries=3, backoff_s=1, max_backoff_s=3).predict_batch([req("p")])
    assert resp.output_text is None
    assert "gave up after 4 attempt(s)" in resp.error and "HTTP 500" in resp.error
    assert resp.latency_ms is not None
    assert sleeps == [1, 2, 3]  # capped by max_backoff_s
    assert len(chat_server.requests) == 4


def test_non_retryable_4xx_fails_immediately(chat_server):
    chat_server.script("p", Reply.error(400))
    [resp] = make(chat_server, sleeps=None).predict_batch([req("p")])  # any sleep fails the test
    assert resp.error.startswith("HTTP 400") and "scripted 400" in resp.error
    assert len(chat_server.requests) == 1


def test_timeout_is_an_errored_case(chat_server):
    chat_server.script("slow", Reply.ok("too late", delay_s=5))  # woken at server shutdown
    sleeps = []
    [resp] = make(chat_server, sleeps, timeout_s=0.3, max_retries=1, backoff_s=0).predict_batch([req("slow")])
    assert resp.output_text is None
    assert "timed out after 0.3s" in resp.error
    assert len(sleeps) == 1 and len(chat_server.requests) == 2  # timeouts are retried


def test_connection_refused_is_retried_then_errored():
    with socket.socket() as s:  # grab a free port, then close it so nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = []
    [resp] = make(f"http://127.0.0.1:{port}/v1", sleeps, max_retries=2, backoff_s=0.1).predict_batch([req("p")])
    assert "gave up after 3 attempt(s): connection error" in resp.error
    assert sleeps == [0.1, 0.2]


@pytest.mark.parametrize(
    "reply, detail",
    [
        (Reply.raw("<html>bad gateway</html>"), "body is not JSON"),
        (Reply.json({"object": "chat.completion", "usage": {}}), "no choices[0].message.content"),
        (Reply.json({"choices": []}), "no choices[0].message.content"),
        (Reply.json({"choices": [{"message": {"role": "assistant", "content": None}}]}), "not a string"),
    ],
)
def test_malformed_body_is_an_errored_case(chat_server, reply, detail):
    chat_server.script("p", reply)
    [resp] = make(chat_server, sleeps=None).predict_batch([req("p")])  # not retried
    assert resp.output_text is None
    assert resp.error.startswith("malformed response:") and detail in resp.error
    assert len(chat_server.requests) == 1


def test_priced_model_without_usage_has_unknown_cost(chat_server):
    chat_server.script("p", Reply.json({"choices": [{"message": {"content": "hi"}}]}))
    [resp] = make(chat_server, price_per_1k_prompt_tokens=1.0).predict_batch([req("p")])
    assert resp.output_text == "hi"
    assert resp.prompt_tokens is None and resp.cost is None


def test_concurrency_is_bounded(chat_server):
    prompts = [f"q{i}" for i in range(9)]
    for p in prompts:
        chat_server.script(p, Reply.ok(f"a-{p}", delay_s=0.15))  # hold each request so they overlap
    responses = make(chat_server, max_concurrency=3).predict_batch([req(p) for p in prompts])
    assert [r.output_text for r in responses] == [f"a-{p}" for p in prompts]
    assert 1 < chat_server.max_in_flight <= 3


def test_mixed_batch_keeps_request_order(chat_server):
    chat_server.script("slow ok", Reply.ok("first", delay_s=0.2))  # finishes last but must come back first
    chat_server.script("down", Reply.error(500))
    chat_server.script("garbage", Reply.raw("not json"))
    chat_server.script("busy", Reply.error(429, retry_after="0"), Reply.ok("after wait"))
    chat_server.script("bad", Reply.error(422))
    prompts = ["slow ok", "down", "garbage", "busy", "bad", "plain"]
    sleeps = []
    responses = make(chat_server, sleeps, max_retries=1, backoff_s=0).predict_batch([req(p) for p in prompts])

    assert [r.output_text for r in responses] == ["first", None, None, "after wait", None, "echo: plain"]
    assert "HTTP 500" in responses[1].error
    assert responses[2].error.startswith("malformed response:")
    assert responses[4].error.startswith("HTTP 422")


def test_empty_batch():
    assert make("http://127.0.0.1:9/v1").predict_batch([]) == []


def test_missing_api_key_env_is_a_user_error(monkeypatch):
    monkeypatch.delenv("FLYWHEEL_MISSING_KEY", raising=False)
    with pytest.raises(UserError, match="FLYWHEEL_MISSING_KEY"):
        make("http://127.0.0.1:9/v1", api_key_env="FLYWHEEL_MISSING_KEY")


def test_invalid_settings_are_user_errors():
    with pytest.raises(UserError, match="max_concurrency"):
        make("http://127.0.0.1:9/v1", max_concurrency=0)


def test_fingerprint_payload_never_includes_the_key(monkeypatch):
    monkeypatch.setenv("FLYWHEEL_TEST_KEY", "sk-secret")
    adapter = make("http://127.0.0.1:9/v1/", api_key_env="FLYWHEEL_TEST_KEY", system_prompt="S", max_tokens=8)
    assert adapter.fingerprint_payload() == {
        "adapter": "chat_completions",
        "base_url": "http://127.0.0.1:9/v1",
        "model": "test-model",
        "temperature": 0.0,
        "max_tokens": 8,
        "system_prompt": "S",
    }
    assert "sk-secret" not in repr(adapter.fingerprint_payload())
