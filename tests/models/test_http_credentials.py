"""The API key of the chat_completions adapter goes only to the configured host, and never comes back out:
redirects between real local servers (one recording the headers it receives), and servers that echo the key."""
from __future__ import annotations

import pytest
from chat_server import ChatServer, Reply

from engine.models.base import ModelRequest
from engine.models.http import ChatCompletionsAdapter, _keeps_credentials
from engine.models.spec import ChatCompletionsParams
from engine.redaction import fingerprint

KEY = "sk-flywheel-test-0123456789abcdef"


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("FLYWHEEL_TEST_KEY", KEY)

    def make(base_url: str, **kwargs) -> ChatCompletionsAdapter:
        params = ChatCompletionsParams.of({"base_url": base_url, "model": "test-model",
                                           "api_key_env": "FLYWHEEL_TEST_KEY", **kwargs})
        return ChatCompletionsAdapter("m", params, sleep=lambda s: pytest.fail(f"unexpected sleep({s})"))
    return make


def ask(adapter: ChatCompletionsAdapter, text: str = "p"):
    [response] = adapter.predict_batch([ModelRequest(case_id=text, input=text, input_text=text)])
    return response


@pytest.fixture
def other_server():
    with ChatServer() as server:
        yield server


def test_a_redirect_to_another_host_does_not_carry_the_key(chat_server, other_server, keyed):
    chat_server.script("p", Reply.redirect(other_server.base_url + "/chat/completions", 307))
    response = ask(keyed(chat_server.base_url))
    assert response.error is None and response.output_text == "echo: p"  # the POST was followed, body and all
    [first] = chat_server.requests
    [followed] = other_server.requests
    assert first.headers["Authorization"] == f"Bearer {KEY}"
    assert "Authorization" not in followed.headers and followed.body["messages"][-1]["content"] == "p"
    assert KEY not in repr(followed.headers)


def test_another_host_name_on_the_same_port_is_another_host(chat_server, keyed):
    port = chat_server.base_url.split(":")[2].split("/")[0]
    chat_server.script("p", Reply.redirect(f"http://localhost:{port}/v2/chat/completions", 308), Reply.ok("there"))
    response = ask(keyed(chat_server.base_url))
    assert response.output_text == "there"
    first, followed = chat_server.requests
    assert first.headers["Authorization"] == f"Bearer {KEY}" and followed.path == "/v2/chat/completions"
    assert "Authorization" not in followed.headers


def test_a_same_host_redirect_keeps_the_key(chat_server, keyed):
    chat_server.script("p", Reply.redirect("/v2/chat/completions", 307), Reply.ok("moved"))
    response = ask(keyed(chat_server.base_url))
    assert response.output_text == "moved"
    first, followed = chat_server.requests
    assert followed.path == "/v2/chat/completions"
    assert first.headers["Authorization"] == followed.headers["Authorization"] == f"Bearer {KEY}"


def test_a_redirect_that_would_turn_the_post_into_a_get_is_a_clear_failure(chat_server, other_server, keyed):
    chat_server.script("p", Reply.redirect(other_server.base_url + "/chat/completions", 302))
    response = ask(keyed(chat_server.base_url))
    assert response.error.startswith("HTTP 302: the endpoint moved to http://127.0.0.1:")
    assert "set base_url to the new address" in response.error
    assert other_server.requests == []


def test_redirect_loops_end(chat_server, keyed):
    chat_server.script("p", Reply.redirect("/v1/chat/completions", 307))
    response = ask(keyed(chat_server.base_url))
    assert response.error.startswith("more than 5 redirects")
    assert len(chat_server.requests) == 6


@pytest.mark.parametrize("origin,target,keeps", [
    ("http://api.example.com/v1/x", "http://api.example.com/v2/x", True),
    ("https://api.example.com/v1/x", "https://API.example.com:443/v2/x", True),
    ("http://api.example.com/v1/x", "https://api.example.com/v1/x", True),  # upgrade to TLS, default ports
    ("https://api.example.com/v1/x", "http://api.example.com/v1/x", False),  # downgrade: key in clear
    ("http://api.example.com/v1/x", "http://api.example.com:8080/v1/x", False),
    ("http://api.example.com/v1/x", "http://evil.example.com/v1/x", False),
    ("http://api.example.com/v1/x", "http://api.example.com.evil.net/v1/x", False),
])
def test_which_redirects_keep_credentials(origin, target, keeps):
    assert _keeps_credentials(origin, target) is keeps


def test_an_answer_echoing_the_key_is_scrubbed(chat_server, keyed):
    chat_server.script("p", Reply.echo_header("Authorization"))
    response = ask(keyed(chat_server.base_url))
    assert response.output_text == f"you sent Authorization: Bearer {fingerprint(KEY)}"
    assert KEY not in repr(response)


def test_an_error_echoing_the_key_is_scrubbed(chat_server, keyed):
    chat_server.script("p", Reply.echo_header("Authorization", status=400))
    response = ask(keyed(chat_server.base_url))
    assert response.error.startswith("HTTP 400") and fingerprint(KEY) in response.error
    assert KEY not in repr(response)
