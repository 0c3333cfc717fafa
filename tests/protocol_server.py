"""A real local HTTP server speaking the OpenAI chat-completions and Anthropic Messages protocols.

For tests (and demos) that need a model API without the internet. It listens on 127.0.0.1 on a free
port, in a background thread of the current process, so other processes (a Celery worker, a browser)
can reach it too::

    from tests.protocol_server import ProtocolServer

    with ProtocolServer(api_key="sk-test") as server:
        settings = {"base_url": server.base_url, "model": "echo", "api_key_env": "TEST_KEY"}
        ...                                   # POST {server.base_url}/chat/completions or /messages
        assert server.requests[-1].headers["authorization"] == "Bearer sk-test"

Endpoints: ``POST /v1/chat/completions`` (OpenAI, ``stream`` true or false, ``stream_options``),
``POST /v1/messages`` (Anthropic, streamed or not; requires ``anthropic-version`` and, when the server
has an ``api_key``, ``x-api-key``), ``POST /v1/moderations`` (OpenAI moderation: flags inputs with the
word ``forbidden``, or the words of ``flag=``; see ``_moderate``), ``GET /_control/requests`` (the
recorded requests as JSON) and ``POST /_control/reset``. Unknown request fields get a 400, as from the real APIs.

Answers are deterministic: ``Echo: <last user message>`` (or ``reply=``), split into word chunks of
one "token" each; ``max_tokens`` truncates (finish ``length``) and stop sequences cut (finish
``stop``). :func:`expected_reply` computes the same text.

Behaviour is scripted by the model name: ``"<name>?<param>=<value>&..."``. Parameters:

====================  ============================================================================
``status=N``          answer with HTTP N and a provider-style JSON error body
``code=X``            error code/type in that body (e.g. ``insufficient_quota``, ``content_filter``)
``retry_after=V``     send ``Retry-After: V`` (seconds or an HTTP date), ``retry_after_ms=V`` likewise
``leak_key=1``        put the received API key into the error message (to test redaction)
``times=N``           apply the failure knobs (status, delay, stall/drop/malformed/error, garbage) to
                      the first N requests with this exact model name only; later ones succeed
``delay=S``           wait S seconds before the response headers (slow first byte)
``stall_after=N``     stream N chunks, then hang (``hang=S``, default 30, or until stopped)
``drop_after=N``      stream N chunks, then close the connection mid-body
``malformed_after=N`` stream N chunks, then a ``data:`` line that is not JSON
``error_after=N``     stream N chunks, then an error event (Anthropic ``overloaded_error``)
``garbage=1``         answer 200 with an HTML page instead of the protocol
``endless=1``         never finish: stream chunks forever (non-streamed: a body that never ends)
``filter=1``          finish with ``content_filter`` (OpenAI) / ``refusal`` (Anthropic)
``chunk_delay=S``     sleep S seconds between chunks
``reply=TEXT``        answer TEXT instead of the echo
``prefer=WORD``       a judge: ``[[A]]`` when WORD occurs before ``split`` (default ``<answer_b>``) in the
                      last user message, ``[[B]]`` when after it, ``[[C]]`` when absent
``no_usage=1``        omit token usage; ``no_done=1`` omit the OpenAI ``[DONE]`` line
====================  ============================================================================

The server records every request (:attr:`ProtocolServer.requests`: path, lower-cased headers, JSON
body, model, arrival time) and the peak number of concurrent requests per model
(:meth:`ProtocolServer.max_in_flight`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

OPENAI_FIELDS = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",  # vLLM / SGLang extension
    "repetition_penalty",  # vLLM / SGLang extension
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "n",
    "user",
    "chat_template_kwargs",
}
ANTHROPIC_FIELDS = {
    "model",
    "messages",
    "system",
    "max_tokens",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "metadata",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_WORD = re.compile(r"\S+\s*")


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: Any
    model: str | None
    at: float = field(default_factory=time.monotonic)


def expected_reply(last_user: str, *, max_tokens: int | None = None, stop: list[str] | None = None) -> str:
    """The text the server answers for ``last_user`` (no ``reply=``), after max_tokens and stop."""
    chunks, _ = _shape(f"Echo: {last_user}", max_tokens, stop or [])
    return "".join(chunks)


def _shape(text: str, max_tokens: int | None, stop: list[str]) -> tuple[list[str], str]:
    finish = "stop"
    cut = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if cut:
        text = text[: min(cut)]
    chunks = _WORD.findall(text)
    if max_tokens is not None and len(chunks) > max_tokens:
        chunks, finish = chunks[:max_tokens], "length"
    return chunks, finish


def _judge_reply(last_user: str, preferred: str, split: str) -> str:
    """A scripted judge: prefers the answer containing ``preferred`` (A when it occurs before the
    ``split`` marker, B after it, a tie [[C]] when absent)."""
    at, cut = last_user.find(preferred), last_user.find(split)
    if at < 0:
        return "Neither answer stands out. [[C]]"
    return "The better answer is clear. [[A]]" if cut < 0 or at < cut else "The better answer is clear. [[B]]"


class _Stop(Exception):
    """The client went away or the server is stopping."""


class ProtocolServer:
    """The server; a context manager that starts on enter and stops on exit."""

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api_key = api_key
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._counts: dict[str, int] = defaultdict(int)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._max_in_flight: dict[str, int] = defaultdict(int)
        self.stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> ProtocolServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="protocol-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ProtocolServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (an Anthropic-style base URL)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the OpenAI-style base URL (the Anthropic backend accepts it too)."""
        return f"{self.root_url}/v1"

    # -- observations -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.model == model]

    def in_flight(self, model: str) -> int:
        """How many requests for ``model`` are being served now."""
        with self._lock:
            return self._in_flight[model]

    def max_in_flight(self, model: str) -> int:
        """The most requests for ``model`` that were being served at the same time."""
        with self._lock:
            return self._max_in_flight[model]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._counts.clear()
            self._max_in_flight.clear()

    # -- used by the handler ------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            if request.model is None:
                return 0
            self._counts[request.model] += 1
            self._in_flight[request.model] += 1
            self._max_in_flight[request.model] = max(self._max_in_flight[request.model], self._in_flight[request.model])
            return self._counts[request.model]

    def _done(self, model: str | None) -> None:
        if model is not None:
            with self._lock:
                self._in_flight[model] -= 1


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # 32+ clients connecting at once (bench/judges.py) overflowed the default 5
    owner: ProtocolServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client hanging up mid-response is routine here (timeouts, closed streams)
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Small SSE writes must leave at once (no Nagle delay), as from a real streaming server.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -----------------------------------------------------------------------------------

    @property
    def owner(self) -> ProtocolServer:
        return self.server.owner

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _start_chunked(self, content_type: str = "text/event-stream") -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: str) -> None:
        if self.owner.stopping.is_set():
            raise _Stop
        raw = data.encode()
        try:
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            self.wfile.flush()
        except OSError:
            raise _Stop from None

    def _end_chunked(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.owner.stopping.wait(seconds):
            raise _Stop

    # -- routing ------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.path == "/_control/requests":
            self._send_json(200, [asdict(r) for r in self.owner.requests])
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.path == "/_control/reset":
            self.owner.reset()
            self._send_json(200, {"ok": True})
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
        count = self.owner._record(RecordedRequest(self.path, headers, body, model))
        try:
            if self.path == "/v1/chat/completions":
                self._serve(_OpenAI(self), headers, body, model, count)
            elif self.path == "/v1/messages":
                self._serve(_Anthropic(self), headers, body, model, count)
            elif self.path == "/v1/moderations":
                self._moderate(body, model, count)
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        except _Stop:
            self.close_connection = True
        finally:
            self.owner._done(model)

    def _moderate(self, body: Any, model: str | None, count: int) -> None:
        """OpenAI's moderation endpoint: flags an input holding any word of ``flag=`` (comma-separated,
        default ``forbidden``) under the category ``violence``; ``status``, ``delay`` and ``times`` as
        for chat, ``garbage=1`` answers a body without ``results``."""
        if not isinstance(body, dict) or not isinstance(body.get("input"), str) or set(body) - {"model", "input"}:
            self._send_json(400, {"error": {"message": "input must be a string", "type": "invalid_request_error"}})
            return
        knobs = dict(parse_qsl((model or "").partition("?")[2]))
        failing = "times" not in knobs or count <= int(knobs["times"])
        if failing and knobs.get("delay"):
            self._sleep(float(knobs["delay"]))
        if failing and knobs.get("status"):
            status = int(knobs["status"])
            self._send_json(status, {"error": {"message": f"scripted failure {status}", "type": "server_error"}})
            return
        if failing and knobs.get("garbage"):
            self._send_json(200, {"unexpected": True})
            return
        words = [w for w in knobs.get("flag", "forbidden").split(",") if w]
        flagged = any(re.search(rf"\b{re.escape(w)}\b", body["input"], re.I) for w in words)
        result = {
            "flagged": flagged,
            "categories": {"violence": flagged, "harassment": False},
            "category_scores": {"violence": 0.97 if flagged else 0.01, "harassment": 0.01},
        }
        self._send_json(200, {"id": f"modr-{uuid.uuid4().hex[:12]}", "model": model, "results": [result]})

    def _serve(self, proto: _Protocol, headers: dict[str, str], body: Any, model: str | None, count: int) -> None:
        problem = proto.check(headers, body)
        if problem is not None:
            status, message = problem
            proto.error(status, message, {})
            return
        assert model is not None
        _, _, query = model.partition("?")
        knobs = dict(parse_qsl(query))
        failing = "times" not in knobs or count <= int(knobs["times"])

        def opt(name: str) -> str | None:
            """A failure knob, or None once ``times`` failures have been served."""
            return knobs.get(name) if failing else None

        if opt("delay"):
            self._sleep(float(knobs["delay"]))
        if opt("status"):
            status = int(knobs["status"])
            extra: dict[str, str] = {}
            if "retry_after" in knobs:
                extra["retry-after"] = knobs["retry_after"]
            if "retry_after_ms" in knobs:
                extra["retry-after-ms"] = knobs["retry_after_ms"]
            message = f"scripted failure {status}"
            if knobs.get("leak_key"):
                message += f" for key {proto.received_key(headers)}"
            proto.error(status, message, extra, code=knobs.get("code"))
            return
        if opt("garbage"):
            page = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return

        last_user = next(
            (m.get("content") for m in reversed(body["messages"]) if isinstance(m, dict) and m.get("role") == "user"),
            "",
        )
        text = knobs["reply"] if "reply" in knobs else f"Echo: {last_user if isinstance(last_user, str) else ''}"
        if "prefer" in knobs:
            text = _judge_reply(str(last_user), knobs["prefer"], knobs.get("split", "<answer_b>"))
        chunks, finish = _shape(text, body.get("max_tokens") or body.get("max_completion_tokens"), proto.stops(body))
        if knobs.get("filter"):
            chunks, finish = chunks[:2], "filter"
        prompt_tokens = sum(len(_WORD.findall(str(m.get("content", "")))) for m in body["messages"]) + len(
            _WORD.findall(str(body.get("system", "")))
        )
        if not body.get("stream"):
            if opt("stall_after") is not None:
                self._sleep(float(knobs.get("hang", 30)))
                return
            if opt("drop_after") is not None:
                self._drop()
                return
            if opt("malformed_after") is not None:
                raw = b'{"choices": [ this is not json'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                return
            if knobs.get("endless"):
                self._start_chunked("application/json")
                self._chunk('{"choices": [{"message": {"role": "assistant", "content": "')
                while True:
                    self._chunk("more " * 100)
                    self._sleep(float(knobs.get("chunk_delay", 0.001)))
            proto.whole(model, "".join(chunks), finish, prompt_tokens, len(chunks), knobs)
            return

        self._start_chunked()
        proto.stream_start(model, prompt_tokens)
        delay = float(knobs.get("chunk_delay", 0))
        sent = 0
        endless = bool(knobs.get("endless"))
        while True:
            for chunk in chunks if not endless else ["more "] * 1000:
                for knob in ("stall_after", "drop_after", "malformed_after", "error_after"):
                    if opt(knob) is not None and sent == int(knobs[knob]):
                        if knob == "stall_after":
                            self._sleep(float(knobs.get("hang", 30)))
                            raise _Stop
                        if knob == "drop_after":
                            self._drop()
                            return
                        if knob == "malformed_after":
                            self._chunk("data: {this is not json\n\n")
                            self._end_chunked()
                            return
                        proto.stream_error()
                        self._end_chunked()
                        return
                if sent and delay:
                    self._sleep(delay)
                elif endless:
                    self._sleep(0.001)
                proto.stream_delta(model, chunk)
                sent += 1
            if not endless:
                break
        proto.stream_end(model, finish, prompt_tokens, len(chunks), knobs)
        self._end_chunked()


class _Protocol:
    """The wire format of one API."""

    def __init__(self, handler: _Handler) -> None:
        self.h = handler
        self.id = uuid.uuid4().hex[:12]

    def check(self, headers: dict[str, str], body: Any) -> tuple[int, str] | None:
        raise NotImplementedError

    def received_key(self, headers: dict[str, str]) -> str:
        raise NotImplementedError

    def stops(self, body: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def error(self, status: int, message: str, headers: dict[str, str], code: str | None = None) -> None:
        raise NotImplementedError

    def whole(self, model: str, text: str, finish: str, prompt: int, completion: int, knobs: dict[str, str]) -> None:
        raise NotImplementedError

    def stream_start(self, model: str, prompt_tokens: int) -> None:
        raise NotImplementedError

    def stream_delta(self, model: str, text: str) -> None:
        raise NotImplementedError

    def stream_error(self) -> None:
        raise NotImplementedError

    def stream_end(self, model: str, finish: str, prompt: int, completion: int, knobs: dict[str, str]) -> None:
        raise NotImplementedError


def _check_messages(body: Any, fields: set[str], api: str) -> tuple[int, str] | None:
    if not isinstance(body, dict):
        return 400, "the body must be a JSON object"
    unknown = sorted(set(body) - fields)
    if unknown:
        return 400, f"Unrecognized request argument supplied: {', '.join(unknown)}"
    if not isinstance(body.get("model"), str):
        return 400, "model: field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, "messages: must be a non-empty list"
    roles = {"system", "user", "assistant"} if api == "openai" else {"user", "assistant"}
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in roles or not isinstance(m.get("content"), str):
            return 400, f"messages.{i}: invalid message for the {api} API: {m!r}"
    return None


class _OpenAI(_Protocol):
    def check(self, headers: dict[str, str], body: Any) -> tuple[int, str] | None:
        key = self.h.owner.api_key
        if key is not None and headers.get("authorization") != f"Bearer {key}":
            return 401, "Incorrect API key provided"
        return _check_messages(body, OPENAI_FIELDS, "openai")

    def received_key(self, headers: dict[str, str]) -> str:
        return headers.get("authorization", "").removeprefix("Bearer ")

    def stops(self, body: dict[str, Any]) -> list[str]:
        stop = body.get("stop") or []
        return [stop] if isinstance(stop, str) else list(stop)

    def error(self, status: int, message: str, headers: dict[str, str], code: str | None = None) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self.h._send_json(status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)

    def _chunk_obj(self, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{self.id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def _finish(self, finish: str) -> str:
        return "content_filter" if finish == "filter" else finish

    def whole(self, model: str, text: str, finish: str, prompt: int, completion: int, knobs: dict[str, str]) -> None:
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{self.id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": self._finish(finish),
                }
            ],
        }
        if not knobs.get("no_usage"):
            payload["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        self.h._send_json(200, payload)

    def _event(self, payload: Any) -> None:
        self.h._chunk(f"data: {json.dumps(payload)}\n\n")

    def stream_start(self, model: str, prompt_tokens: int) -> None:
        self.h._chunk(": keep-alive comment\n\n")
        self._event(self._chunk_obj(model, {"role": "assistant", "content": ""}, None))

    def stream_delta(self, model: str, text: str) -> None:
        self._event(self._chunk_obj(model, {"content": text}, None))

    def stream_error(self) -> None:
        self._event(
            {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}
        )

    def stream_end(self, model: str, finish: str, prompt: int, completion: int, knobs: dict[str, str]) -> None:
        self._event(self._chunk_obj(model, {}, self._finish(finish)))
        body_usage = not knobs.get("no_usage")
        if body_usage:
            usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
            self._event(
                {
                    "id": f"chatcmpl-{self.id}",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        if not knobs.get("no_done"):
            self.h._chunk("data: [DONE]\n\n")


class _Anthropic(_Protocol):
    def check(self, headers: dict[str, str], body: Any) -> tuple[int, str] | None:
        key = self.h.owner.api_key
        if key is not None and headers.get("x-api-key") != key:
            return 401, "invalid x-api-key"
        if not headers.get("anthropic-version"):
            return 400, "anthropic-version: header is required"
        problem = _check_messages(body, ANTHROPIC_FIELDS, "anthropic")
        if problem is None and not isinstance(body.get("max_tokens"), int):
            return 400, "max_tokens: Field required"
        return problem

    def received_key(self, headers: dict[str, str]) -> str:
        return headers.get("x-api-key", "")

    def stops(self, body: dict[str, Any]) -> list[str]:
        return list(body.get("stop_sequences") or [])

    def error(self, status: int, message: str, headers: dict[str, str], code: str | None = None) -> None:
        etype = code or _ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        self.h._send_json(status, {"type": "error", "error": {"type": etype, "message": message}}, headers)

    def _stop_reason(self, finish: str) -> str:
        return {"stop": "end_turn", "length": "max_tokens", "filter": "refusal"}[finish]

    def whole(self, model: str, text: str, finish: str, prompt: int, completion: int, knobs: dict[str, str]) -> None:
        payload: dict[str, Any] = {
            "id": f"msg_{self.id}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": self._stop_reason(finish),
            "stop_sequence": None,
        }
        if not knobs.get("no_usage"):
            payload["usage"] = {"input_tokens": prompt, "output_tokens": completion}
        self.h._send_json(200, payload)

    def _event(self, name: str, payload: dict[str, Any]) -> None:
        self.h._chunk(f"event: {name}\ndata: {json.dumps({'type': name, **payload})}\n\n")

    def stream_start(self, model: str, prompt_tokens: int) -> None:
        message = {
            "id": f"msg_{self.id}",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": 1},
        }
        self._event("message_start", {"message": message})
        self._event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        self._event("ping", {})

    def stream_delta(self, model: str, text: str) -> None:
        self._event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})

    def stream_error(self) -> None:
        self._event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})

    def stream_end(self, model: str, finish: str, prompt: int, completion: int, knobs: dict[str, str]) -> None:
        self._event("content_block_stop", {"index": 0})
        usage = {} if knobs.get("no_usage") else {"output_tokens": completion}
        self._event(
            "message_delta",
            {"delta": {"stop_reason": self._stop_reason(finish), "stop_sequence": None}, "usage": usage},
        )
        self._event("message_stop", {})


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the OpenAI and Anthropic test protocols locally.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    server = ProtocolServer(api_key=args.api_key, port=args.port).start()
    print(f"OpenAI base_url: {server.base_url}  Anthropic base_url: {server.root_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
