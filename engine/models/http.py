"""Adapter for any OpenAI-compatible `POST {base_url}/chat/completions` endpoint.

Standard library only (urllib + a thread pool bounded by `max_concurrency`), so no extra dependency.

Failure policy (a case never raises; every failure is `ModelResponse.failed(reason)`):
  - retried with backoff: HTTP 429, HTTP 5xx, connection errors, timeouts. The wait is
    `backoff_s * 2**n` capped at `max_backoff_s`, except that a 429/503 carrying `Retry-After`
    (seconds or an HTTP date) waits exactly what the server asked for.
  - not retried: other 4xx (the request itself is wrong, repeating it cannot help) and a 2xx with a
    malformed body (reason starts with "malformed response:").
Latency: for a success, the wall time of the successful attempt only (what the model took, not our
waits); for a failure, the wall time from the first attempt until giving up, backoff waits included.

Credentials: the API key is sent only to the configured host. Redirects are followed here, not by urllib:
a 307/308 is re-sent (same method and body) to its Location, up to 5 times, with the Authorization header
only when the new URL is on the same host and not a downgrade from https to http; a 301/302/303 (which would
turn the POST into a GET) fails with the new address. A response that echoes the key (in the answer, an
error body, an id) has it replaced by its fingerprint before anything is returned, so it is never stored,
scored or reported; the key is also registered with engine/redaction.py so no written file holds it.
"""
from __future__ import annotations

import email.utils
import http.client
import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Callable

from engine.errors import UserError
from engine.models.base import ModelRequest, ModelResponse
from engine.models.spec import ChatCompletionsParams
from engine.redaction import fingerprint, register_secret

_MAX_REDIRECTS = 5
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "api-key", "x-api-key"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would re-send every header to wherever a redirect points; ChatCompletionsAdapter._post
    follows redirects itself and decides which headers go along."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx then surfaces as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirects)


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _Fail(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Redirect(Exception):
    def __init__(self, code: int, location: str):
        super().__init__(f"HTTP {code} -> {location}")
        self.code, self.location = code, location


class ChatCompletionsAdapter:
    def __init__(self, name: str, params: ChatCompletionsParams, project_dir=None,
                 sleep: Callable[[float], None] = time.sleep):
        """`params`: the model config's params with their defaults (schemas/model.schema.json)."""
        p = params
        problems = [
            msg
            for bad, msg in [
                (p.timeout_s <= 0, "timeout_s must be > 0"),
                (p.max_retries < 0, "max_retries must be >= 0"),
                (p.backoff_s < 0 or p.max_backoff_s < 0, "backoff_s and max_backoff_s must be >= 0"),
                (p.max_concurrency < 1, "max_concurrency must be >= 1"),
                (p.max_steps < 1, "max_steps must be >= 1"),
                (p.price_per_1k_prompt_tokens < 0 or p.price_per_1k_completion_tokens < 0, "prices must be >= 0"),
            ]
            if bad
        ]
        if problems:
            raise UserError(f"model '{name}': " + "; ".join(problems))
        self._api_key = None
        if p.api_key_env:
            # Fail at construction, not once per case: a missing key would error every case identically.
            self._api_key = os.environ.get(p.api_key_env)
            if not self._api_key:
                raise UserError(
                    f"model '{name}': environment variable {p.api_key_env} (api_key_env) is not set or empty; "
                    f"export it with the API key for {p.base_url}"
                )
            register_secret(self._api_key)
        self.name = name
        self.base_url = p.base_url.rstrip("/")
        self.model = p.model
        self.temperature = p.temperature
        self.max_tokens = p.max_tokens
        self.system_prompt = p.system_prompt
        self.timeout_s = p.timeout_s
        self.max_retries = p.max_retries
        self.backoff_s = p.backoff_s
        self.max_backoff_s = p.max_backoff_s
        self.max_concurrency = p.max_concurrency
        self.price_prompt = p.price_per_1k_prompt_tokens
        self.price_completion = p.price_per_1k_completion_tokens
        self.sleep = sleep
        self._url = f"{self.base_url}/chat/completions"
        self.max_steps = p.max_steps
        self.tools = None
        self.turn_cache = None  # set by the run for an agent (engine/agents/turn_cache.py)
        if p.tools:  # an agent: the tool loop of engine/agents/tool_loop.py, tools built once here
            from engine.agents.tool_loop import build_tools
            self.tools = build_tools(name, p.tools, project_dir)

    def fingerprint_payload(self) -> dict:
        # Only what shapes the output; transport knobs (timeouts, retries, prices) and the key stay out.
        return {
            "adapter": "chat_completions",
            "base_url": self.base_url,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "system_prompt": self.system_prompt,
            **({"tools": [tool.fingerprint() for tool in self.tools], "max_steps": self.max_steps}
               if self.tools else {}),
        }

    def predict_batch(self, requests: list[ModelRequest]) -> list[ModelResponse]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            return list(pool.map(self._predict_safely, requests))  # map keeps request order

    def _predict_safely(self, request: ModelRequest) -> ModelResponse:
        try:
            return self._predict_one(request)
        except Exception as e:  # a bug here must still not sink the whole batch
            return ModelResponse.failed(f"unexpected adapter error: {e!r}")

    def _predict_one(self, request: ModelRequest) -> ModelResponse:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages.extend({"role": m["role"], "content": m["content"]} for m in request.messages)
        messages.append({"role": "user", "content": request.input_text})
        if self.tools:
            from engine.agents.tool_loop import run_tool_loop
            return run_tool_loop(self, messages, request.repeat)
        return self.complete(messages)

    def payload(self, messages: list[dict], **extra) -> bytes:
        payload = {"model": self.model, "messages": messages, "temperature": self.temperature, **extra}
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        return json.dumps(payload).encode("utf-8")

    def complete(self, messages: list[dict], parse: Callable | None = None, **extra) -> ModelResponse:
        """One chat completion with retries, its body read by `parse(raw, latency_ms, attempts)` (the final
        answer's `_parse` by default)."""
        body = self.payload(messages, **extra)
        parse = parse or self._parse
        first_start = time.monotonic()
        wait = 0.0
        reason = ""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                self.sleep(wait)
            start = time.monotonic()
            try:
                raw = self._post(body)
            except _Retry as r:
                reason = r.reason
                wait = r.retry_after if r.retry_after is not None else self._backoff(attempt)
                continue
            except _Fail as f:
                return ModelResponse.failed(f.reason, _ms_since(first_start))
            return parse(raw, _ms_since(start), attempt + 1)
        return ModelResponse.failed(f"gave up after {attempts} attempt(s): {reason}", _ms_since(first_start))

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2**attempt, self.max_backoff_s)

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "flywheel"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        url = self._url
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                return self._post_once(url, body, headers)
            except _Redirect as r:
                target = urllib.parse.urljoin(url, r.location)
                if urllib.parse.urlsplit(target).scheme not in _DEFAULT_PORTS:
                    raise _Fail(f"HTTP {r.code} redirect to {target!r}: not an http(s) URL") from None
                if r.code not in (307, 308):
                    raise _Fail(f"HTTP {r.code}: the endpoint moved to {target}; a POST cannot follow this "
                                f"redirect, set base_url to the new address") from None
                if not _keeps_credentials(url, target):
                    headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
                url = target
        raise _Fail(f"more than {_MAX_REDIRECTS} redirects from {self._url}")

    def _post_once(self, url: str, body: bytes, headers: dict) -> bytes:
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with _OPENER.open(req, timeout=self.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            if e.code in (301, 302, 303, 307, 308):
                location = e.headers.get("Location")
                _read_quietly(e)
                if not location:
                    raise _Fail(f"HTTP {e.code} redirect without a Location header") from None
                raise _Redirect(e.code, location) from None
            detail = self._scrub(_excerpt(_read_quietly(e)))
            reason = f"HTTP {e.code}" + (f": {detail}" if detail else "")
            if e.code == 429 or e.code >= 500:
                retry_after = _retry_after_s(e.headers.get("Retry-After")) if e.code in (429, 503) else None
                raise _Retry(reason, retry_after) from None
            raise _Fail(reason) from None
        except TimeoutError:  # a read timeout surfaces bare, not wrapped in URLError
            raise _Retry(f"timed out after {self.timeout_s}s") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise _Retry(f"timed out after {self.timeout_s}s") from None
            raise _Retry(f"connection error: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:  # reset, dropped connection, bad status line...
            raise _Retry(f"connection error: {e!r}") from None

    def _scrub(self, text):
        """`text` with the API key replaced by its fingerprint, should the server have echoed it."""
        if self._api_key and isinstance(text, str) and self._api_key in text:
            return text.replace(self._api_key, fingerprint(self._api_key))
        return text

    def _parse(self, raw: bytes, latency_ms: float, attempts: int) -> ModelResponse:
        def malformed(why: str) -> ModelResponse:
            return ModelResponse.failed(self._scrub(f"malformed response: {why}"), latency_ms)

        try:
            data = json.loads(raw)
        except ValueError:  # includes UnicodeDecodeError
            return malformed(f"body is not JSON: {_excerpt(raw)!r}")
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return malformed(f"no choices[0].message.content in {_excerpt(raw)!r}")
        if not isinstance(content, str):
            return malformed(f"choices[0].message.content is {type(content).__name__}, not a string")

        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
        completion_tokens = _int_or_none(usage.get("completion_tokens"))
        return ModelResponse(
            output_text=self._scrub(content),
            latency_ms=latency_ms,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=self._cost(prompt_tokens, completion_tokens),
            raw={"attempts": attempts, "id": self._scrub(data.get("id")),
                 "finish_reason": self._scrub(choice.get("finish_reason"))},
        )

    def _cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        total = 0.0
        for tokens, price in ((prompt_tokens, self.price_prompt), (completion_tokens, self.price_completion)):
            if price:
                if tokens is None:
                    return None  # priced but the server did not report usage: unknown, not free
                total += tokens / 1000 * price
        return total


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _keeps_credentials(origin: str, target: str) -> bool:
    """Credentials follow a redirect only to the same host (and port), never from https down to http."""
    a, b = urllib.parse.urlsplit(origin), urllib.parse.urlsplit(target)
    if (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    if a.scheme == "https" and b.scheme != "https":
        return False
    port_a = a.port or _DEFAULT_PORTS.get(a.scheme)
    port_b = b.port or _DEFAULT_PORTS.get(b.scheme)
    return port_a == port_b or (a.scheme, b.scheme, port_a, port_b) == ("http", "https", 80, 443)


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_quietly(e: urllib.error.HTTPError) -> bytes:
    try:
        return e.read() or b""
    except Exception:
        return b""
    finally:
        e.close()  # release the connection; otherwise a ResourceWarning per error


def _excerpt(raw: bytes, limit: int = 200) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _ms_since(start: float) -> float:
    return (time.monotonic() - start) * 1000
