"""Shared HTTP machinery for API backends: settings, retries, deadlines, concurrency, event streams
(read with httpx-sse), errors.

Policy (the same for every HTTP provider):

- ``total_timeout`` is one deadline for the whole call: waiting for a concurrency slot, every attempt,
  the backoff sleeps and the streaming of the body. While a body streams, a watchdog shuts the socket
  at the deadline, so a stream that stalls or drips forever still ends on time. ``connect_timeout``
  and ``read_timeout`` (the longest silence between two reads) bound each attempt as well.
- Retries follow :class:`backends.retry.RetryPolicy` with ``backoff_base``, ``backoff_max``,
  ``max_retries`` and ``max_retry_after`` (exponential backoff with jitter, never less than a
  ``Retry-After`` given as seconds, an HTTP date or OpenAI's ``retry-after-ms``; a longer
  ``Retry-After`` than allowed is raised at once with ``retry_after`` set; no wait past the deadline).
  Retryable: 408/429/5xx/529, dropped or refused connections and read timeouts. Never retried:
  400/401/403/404/422 and other 4xx, malformed responses, and anything after the first text delta of
  a stream was yielded.
- ``max_concurrency`` caps the requests in flight per ``concurrency_key`` (default: base URL + model)
  across all backend instances of the process (one ``threading.BoundedSemaphore`` per key).
- ``max_response_chars`` bounds the reply: a stream is cut there and closed (finish_reason
  ``"length"``); a non-streamed body larger than a proportional byte budget is an
  ``invalid_response``.
- The API key is read from the environment variable named by ``api_key_env`` on every call, never
  stored, and removed from any text that goes into an error.
"""

from __future__ import annotations

import abc
import contextlib
import email.utils
import heapq
import json
import os
import re
import socket
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from backends.base import Backend, GenerationResult, Message, SettingsReader, ShownText
from backends.errors import BackendError, ErrorKind, InvalidRequest, redact
from backends.params import DecodingParams
from backends.retry import RetryPolicy


@dataclass(frozen=True)
class HttpSettings:
    """Connection and retry settings common to all HTTP backends (see the module docstring)."""

    base_url: str
    model: str
    api_key_env: str | None
    headers: dict[str, str]
    connect_timeout: float
    read_timeout: float
    total_timeout: float
    max_retries: int
    backoff_base: float
    backoff_max: float
    max_retry_after: float
    max_concurrency: int | None
    concurrency_key: str
    max_response_chars: int
    trust_env: bool

    @classmethod
    def read(
        cls,
        reader: SettingsReader,
        *,
        default_base_url: str,
        default_api_key_env: str | None,
        key_env_only_for_default_url: bool,
    ) -> HttpSettings:
        base_url = reader.str("base_url", default_base_url).rstrip("/")
        if not re.match(r"^https?://[^/\s]+", base_url):
            raise InvalidRequest("settings.base_url", f"must be an http(s) URL, got {base_url!r}")
        model = reader.str("model", required=True)
        if reader.raw("api_key") is not None:  # a secret must not live in stored settings
            raise InvalidRequest(
                "settings.api_key",
                "do not store keys in settings; put the key in an environment variable and name it in "
                "settings.api_key_env",
            )
        if key_env_only_for_default_url and base_url != default_base_url:
            default_api_key_env = None  # e.g. a local vLLM server without authentication
        api_key_env = reader.str("api_key_env", default_api_key_env)
        if api_key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env):
            raise InvalidRequest(
                "settings.api_key_env", "must be the NAME of an environment variable, e.g. OPENAI_API_KEY"
            )
        max_concurrency = reader.int("max_concurrency", None, low=1, high=100_000)
        return cls(
            base_url=base_url,
            model=model,
            api_key_env=api_key_env,
            headers=reader.str_dict("headers"),
            connect_timeout=reader.number("connect_timeout", 10.0, low=0.001),
            read_timeout=reader.number("read_timeout", 120.0, low=0.001),
            total_timeout=reader.number("total_timeout", 600.0, low=0.001),
            max_retries=reader.int("max_retries", 3, low=0, high=20),
            backoff_base=reader.number("backoff_base", 0.5, low=0.0),
            backoff_max=reader.number("backoff_max", 30.0, low=0.0),
            max_retry_after=reader.number("max_retry_after", 60.0, low=0.0),
            max_concurrency=max_concurrency,
            concurrency_key=reader.str("concurrency_key", f"{base_url}|{model}"),
            max_response_chars=reader.int("max_response_chars", 200_000, low=1, high=100_000_000),
            trust_env=reader.bool("trust_env", True),
        )


# -- process-wide shared state -----------------------------------------------------------------------

_state_lock = threading.Lock()
_clients: dict[tuple[int, bool], httpx.Client] = {}
_semaphores: dict[str, tuple[int, threading.BoundedSemaphore]] = {}


def shared_client(trust_env: bool = True) -> httpx.Client:
    """One pooled client per process (re-created after a fork, e.g. in a prefork Celery worker)."""
    key = (os.getpid(), trust_env)
    with _state_lock:
        client = _clients.get(key)
        if client is None:
            client = httpx.Client(
                trust_env=trust_env,
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
                follow_redirects=False,
            )
            _clients[key] = client
        return client


def concurrency_semaphore(key: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore for ``key``; a changed limit applies to requests that start later."""
    with _state_lock:
        entry = _semaphores.get(key)
        if entry is None or entry[0] != limit:
            entry = (limit, threading.BoundedSemaphore(limit))
            _semaphores[key] = entry
        return entry[1]


# -- errors ------------------------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date."""
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after-ms")
    if value is not None:
        with contextlib.suppress(ValueError):
            return max(float(value) / 1000.0, 0.0)
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(seconds, 0.0) if seconds == seconds else None  # NaN guard


def error_detail(body: bytes | str) -> tuple[str, str]:
    """(message, code-or-type) from an OpenAI- or Anthropic-style JSON error body, else the raw text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500], ""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = err.get("message")
        code = err.get("code") or err.get("type") or ""
        return (str(message) if message is not None else text[:500]), str(code)
    if isinstance(err, str):
        return err, ""
    return text.strip()[:500], ""


def classify_status(
    status: int, body: bytes | str, headers: Mapping[str, str], provider: str, secrets: list[str | None]
) -> BackendError:
    """The :class:`BackendError` for an HTTP error response."""
    message, code = error_detail(body)
    message = redact(message, secrets)[:500]
    retry_after = parse_retry_after(headers)
    text = f"{provider} returned HTTP {status}: {message}" + (f" ({code})" if code else "")
    kind: ErrorKind
    retryable: bool | None = None
    if "content_filter" in code or "content_policy" in code:
        kind = "content_filtered"
    elif status in (401, 403):
        kind = "authentication"
    elif status == 429:
        kind = "rate_limit"
        if code == "insufficient_quota":  # out of credit: waiting will not help
            retryable = False
    elif status == 408:
        kind = "timeout"
    elif status >= 500:
        kind = "server_error"
    elif 300 <= status < 400:
        kind, retryable = "invalid_response", False
        text = f"{provider} answered with a redirect (HTTP {status}); check settings.base_url"
    else:
        kind = "bad_request"
    return BackendError(kind, text, retryable=retryable, retry_after=retry_after, status_code=status)


def translate_transport_error(exc: httpx.HTTPError, provider: str, secrets: list[str | None]) -> BackendError:
    """The :class:`BackendError` for an httpx transport failure (no HTTP status)."""
    detail = redact(str(exc) or type(exc).__name__, secrets)
    if isinstance(exc, httpx.ConnectTimeout):
        return BackendError("connection", f"could not connect to {provider} in time: {detail}")
    if isinstance(exc, httpx.TimeoutException):
        return BackendError("timeout", f"{provider} sent no data within the read timeout: {detail}")
    if isinstance(exc, httpx.ConnectError):
        return BackendError("connection", f"could not connect to {provider}: {detail}")
    if isinstance(exc, httpx.DecodingError):
        return BackendError("invalid_response", f"{provider} sent an undecodable body: {detail}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return BackendError("bad_request", f"invalid URL for {provider}: {detail}", retryable=False)
    return BackendError("connection", f"connection to {provider} failed: {detail}")


# -- deadline watchdog -------------------------------------------------------------------------------


class _Watch:
    """One response watched until its deadline (an entry of the process's :class:`_DeadlineWatcher`)."""

    __slots__ = ("deadline", "done", "fired", "response", "sock")

    def __init__(self, deadline: float, response: httpx.Response, sock: socket.socket) -> None:
        self.deadline = deadline
        self.fired = False
        self.done = False  # cancelled (the response is closed or about to be: never shut it then) or fired
        self.sock = sock
        self.response: httpx.Response | None = response


class _DeadlineWatcher:
    """Shuts each watched response's socket at its deadline, so a blocked read returns at once.

    One daemon thread per process for all calls (a thread per call cost 0.75 ms of CPU per judge
    verdict): a heap of deadlines under a condition variable. Watching and cancelling are O(log n)
    and O(1) under one lock; the thread is woken only when a new deadline comes before every other
    one. Cancelled entries stay in the heap until their deadline or until they are over half of it
    (then it is rebuilt without them), so the heap stays proportional to the calls in flight.
    """

    COMPACT_AT = 64  # cancelled entries below this are never worth a rebuild

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = 0
        self._cancelled = 0
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, response: httpx.Response, sock: socket.socket) -> _Watch:
        entry = _Watch(deadline, response, sock)
        with self._cond:
            self._seq += 1
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (deadline, self._seq, entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            elif earliest is None or deadline < earliest:
                self._cond.notify()
        return entry

    def cancel(self, entry: _Watch) -> None:
        with self._cond:
            if entry.done:
                return
            entry.done = True
            entry.response = None
            self._cancelled += 1
            if self._cancelled >= self.COMPACT_AT and 2 * self._cancelled > len(self._heap):
                self._heap = [item for item in self._heap if not item[2].done]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def pending(self) -> tuple[int, int]:
        """(calls watched now, entries in the heap including cancelled ones)."""
        with self._cond:
            return len(self._heap) - self._cancelled, len(self._heap)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][2].done or heap[0][0] <= now):
                    entry = heapq.heappop(heap)[2]
                    if entry.done:
                        self._cancelled -= 1
                    else:
                        self._fire(entry)
                        entry.done = True  # out of the heap: a later cancel has nothing to do
                self._cond.wait(heap[0][0] - now if heap else None)

    @staticmethod
    def _fire(entry: _Watch) -> None:
        # Under the lock, so a cancel (the response closed and its connection back in the pool, where
        # it may serve someone else) cannot cross it.
        response = entry.response
        if response is None or response.is_closed:
            return
        entry.fired = True
        with contextlib.suppress(OSError):
            socket.socket.shutdown(entry.sock, socket.SHUT_RDWR)  # the raw fd, also under TLS


_watchers: dict[int, _DeadlineWatcher] = {}


def deadline_watcher() -> _DeadlineWatcher:
    """The process's watcher (a new one after a fork: the parent's thread is not in the child)."""
    pid = os.getpid()
    watcher = _watchers.get(pid)
    if watcher is None:
        with _state_lock:
            watcher = _watchers.get(pid)
            if watcher is None:
                _watchers.clear()
                watcher = _watchers[pid] = _DeadlineWatcher()
    return watcher


class _Watchdog:
    """A call's deadline: shuts the response's socket when it passes (see :class:`_DeadlineWatcher`)."""

    __slots__ = ("_entry", "_watcher", "deadline")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._entry: _Watch | None = None
        self._watcher: _DeadlineWatcher | None = None

    @property
    def fired(self) -> bool:
        return self._entry is not None and self._entry.fired

    def attach(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return  # no socket to watch (e.g. a test transport): the between-chunk checks still apply
        self._watcher = deadline_watcher()
        self._entry = self._watcher.watch(self.deadline, response, sock)

    def cancel(self) -> None:
        if self._watcher is not None and self._entry is not None:
            self._watcher.cancel(self._entry)


# -- server-sent events ------------------------------------------------------------------------------


def iter_events(response: httpx.Response, provider: str) -> Iterator[ServerSentEvent]:
    """The Server-Sent Events of a streamed response, parsed by httpx-sse; events without data (a
    lone ``event:`` or ``id:``) are skipped, comments and ``retry:`` never reach the caller.

    A body that is not an event stream by its Content-Type (an HTML error page, a JSON body from a
    server that ignored ``stream``) is an ``invalid_response``, not retried. An event cut off by the
    end of the body (no blank line after it) is dropped, as the SSE standard says.
    """
    try:
        for event in EventSource(response).iter_sse():
            if event.data:
                yield event
    except SSEError as exc:
        raise BackendError("invalid_response", f"{provider} did not answer with an event stream: {exc}") from None


def parse_json_event(event: ServerSentEvent, provider: str) -> dict[str, Any]:
    """The JSON object in an event's data, or ``invalid_response``."""
    try:
        value = json.loads(event.data)
    except ValueError:
        raise BackendError(
            "invalid_response", f"{provider} sent an event that is not JSON: {event.data[:200]!r}"
        ) from None
    if not isinstance(value, dict):
        raise BackendError("invalid_response", f"{provider} sent an event that is not a JSON object")
    return value


def invalid(provider: str, what: str) -> BackendError:
    return BackendError("invalid_response", f"{provider} sent an unexpected response: {what}")


# -- the backend base class --------------------------------------------------------------------------


@dataclass
class StreamEnd:
    """What a stream parser returns after the last delta."""

    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class ParsedResponse:
    text: str
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class HttpBackend(Backend):
    """Retries, deadline, concurrency and length guard around a provider's wire format."""

    provider: str = "HTTP backend"
    default_base_url: str = ""
    default_api_key_env: str | None = None
    key_env_only_for_default_url: bool = False
    # The provider's finish reasons: ours by its names, the one that means it filtered the answer, and
    # how the error says so.
    finish_reasons: ClassVar[Mapping[str, str]] = {}
    filtered_reason: ClassVar[str | None] = None
    filtered_text: ClassVar[str] = "filtered the answer"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        reader = SettingsReader(settings, self.kind)
        self.http = HttpSettings.read(
            reader,
            default_base_url=self.default_base_url,
            default_api_key_env=self.default_api_key_env,
            key_env_only_for_default_url=self.key_env_only_for_default_url,
        )
        self._read_provider_settings(reader)
        reader.finish()
        s = self.http
        self.retry = RetryPolicy(s.backoff_base, s.backoff_max, s.max_retries, s.max_retry_after)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} model={self.http.model!r} base_url={self.http.base_url!r}>"

    # -- hooks --------------------------------------------------------------------------------------

    def _read_provider_settings(self, reader: SettingsReader) -> None:
        """Read provider-specific settings (called before unknown keys are rejected)."""

    @abc.abstractmethod
    def _url(self) -> str: ...

    @abc.abstractmethod
    def _auth_headers(self, api_key: str | None) -> dict[str, str]: ...

    @abc.abstractmethod
    def _body(self, messages: list[Message], params: DecodingParams, stream: bool) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _parse_response(self, data: dict[str, Any]) -> ParsedResponse: ...

    @abc.abstractmethod
    def _parse_stream(self, events: Iterator[ServerSentEvent]) -> Generator[str, None, StreamEnd]: ...

    # -- plumbing -----------------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        name = self.http.api_key_env
        if name is None:
            return None
        key = os.environ.get(name, "").strip()
        if not key:
            raise BackendError(
                "authentication",
                f"environment variable {name} (settings.api_key_env) is not set or empty; "
                f"the {self.provider} API key must be there",
                retryable=False,
            )
        return key

    def _secrets(self, api_key: str | None) -> list[str | None]:
        sensitive = re.compile(r"auth|key|token|secret|cookie", re.I)
        values = [v for k, v in self.http.headers.items() if sensitive.search(k)]
        # "Bearer <token>": a server may echo the token alone
        return [api_key, *values, *(v.split()[-1] for v in values if v.split())]

    @contextlib.contextmanager
    def _open(self, body: dict[str, Any], deadline: float) -> Iterator[tuple[httpx.Response, _Watchdog]]:
        """One attempt: a slot, the request, a 2xx response held open; errors become BackendError."""
        s = self.http
        api_key = self._api_key()
        secrets = self._secrets(api_key)
        semaphore = concurrency_semaphore(s.concurrency_key, s.max_concurrency) if s.max_concurrency else None
        if semaphore is not None and not semaphore.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise BackendError(
                "timeout",
                f"no free slot among {s.max_concurrency} concurrent requests for {s.concurrency_key!r} "
                f"within the total timeout of {s.total_timeout:g}s",
            )
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._deadline_error()
            timeout = httpx.Timeout(
                connect=min(s.connect_timeout, remaining),
                read=min(s.read_timeout, remaining),
                write=min(s.read_timeout, remaining),
                pool=remaining,
            )
            # When the deadline is nearer than the read timeout, a read timeout means the deadline passed.
            read_is_deadline = s.read_timeout >= remaining
            headers = {**s.headers, **self._auth_headers(api_key), "accept": "text/event-stream, application/json"}
            client = shared_client(s.trust_env)
            watchdog = _Watchdog(deadline)
            try:
                request = client.build_request("POST", self._url(), json=body, headers=headers, timeout=timeout)
                response = client.send(request, stream=True)
            except httpx.ReadTimeout as exc:
                if read_is_deadline:
                    raise self._deadline_error() from None
                raise translate_transport_error(exc, self.provider, secrets) from None
            except httpx.HTTPError as exc:
                raise translate_transport_error(exc, self.provider, secrets) from None
            try:
                watchdog.attach(response)
                if response.status_code >= 300:
                    raw = _read_limited(response, 64 * 1024)
                    raise classify_status(response.status_code, raw, response.headers, self.provider, secrets)
                yield response, watchdog
                if watchdog.fired:
                    raise self._deadline_error()
            except BackendError as exc:
                if watchdog.fired and exc.kind != "timeout":
                    raise self._deadline_error() from None
                exc.message = redact(exc.message, secrets)  # provider text may echo a key back
                exc.args = (exc.message,)
                raise
            except httpx.HTTPError as exc:
                if watchdog.fired or (read_is_deadline and isinstance(exc, httpx.ReadTimeout)):
                    raise self._deadline_error() from None
                raise translate_transport_error(exc, self.provider, secrets) from None
            finally:
                watchdog.cancel()
                response.close()
        finally:
            if semaphore is not None:
                semaphore.release()

    @staticmethod
    def _sampling_fields(params: DecodingParams, names: tuple[str, ...], stop_field: str = "stop") -> dict[str, Any]:
        """The decoding parameters ``names`` (and the stop strings, as ``stop_field``) for a request
        body, leaving out those not set (the provider's default applies). Greedy decoding
        (``do_sample`` false) is sent as ``temperature: 0``."""
        fields: dict[str, Any] = {} if params.do_sample else {"temperature": 0}
        values = {name: getattr(params, name) for name in names} | {stop_field: list(params.stop) or None}
        return fields | {name: value for name, value in values.items() if value is not None}

    def _finish(self, reason: object, text_len: int) -> str:
        """Our finish reason for the provider's (none given: ``"stop"``). Its content-filter reason
        raises ``content_filtered``, never retried: a filtered answer is not a fair side of a battle."""
        if reason is None:
            return "stop"
        if reason == self.filtered_reason:
            raise BackendError(
                "content_filtered", f"{self.provider} {self.filtered_text} after {text_len} characters", retryable=False
            )
        return self.finish_reasons.get(str(reason), str(reason))

    def _deadline_error(self) -> BackendError:
        limit = self.http.total_timeout
        return BackendError("timeout", f"{self.provider} call exceeded the total timeout of {limit:g}s")

    # -- Backend API ----------------------------------------------------------------------------------

    def _generate(self, messages: list[Message], params: DecodingParams) -> GenerationResult:
        start = time.monotonic()
        deadline = start + self.http.total_timeout
        body = self._body(messages, params, stream=False)
        limit = self.http.max_response_chars * 8 + 256 * 1024
        for attempt in self.retry.attempts(deadline):
            with attempt, self._open(body, deadline) as (response, _):
                raw = _read_limited(response, limit + 1)
                if len(raw) > limit:
                    raise invalid(self.provider, f"response body larger than {limit} bytes")
                try:
                    data = json.loads(raw)
                except ValueError:
                    raise invalid(self.provider, f"body is not JSON: {raw[:200]!r}") from None
                if not isinstance(data, dict):
                    raise invalid(self.provider, "body is not a JSON object")
                parsed = self._parse_response(data)
        text, finish = parsed.text, parsed.finish_reason
        if len(text) > self.http.max_response_chars:
            text, finish = text[: self.http.max_response_chars], "length"
        return GenerationResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=parsed.prompt_tokens,
            completion_tokens=parsed.completion_tokens,
            latency_s=time.monotonic() - start,
            ttft_s=None,
            model=self.http.model,
            attempts=attempt.number,
        )

    def _stream(self, messages: list[Message], params: DecodingParams) -> Generator[str, None, GenerationResult]:
        start = time.monotonic()
        deadline = start + self.http.total_timeout
        body = self._body(messages, params, stream=True)
        for attempt in self.retry.attempts(deadline):
            with attempt, self._open(body, deadline) as (response, _):
                shown = ShownText(start, max_chars=self.http.max_response_chars)
                parser = self._parse_stream(iter_events(response, self.provider))
                while True:
                    try:
                        delta = next(parser)
                    except StopIteration as stop:
                        end: StreamEnd = stop.value
                        break
                    if time.monotonic() >= deadline:
                        raise self._deadline_error()
                    out = shown.push(delta)
                    if out:
                        # After text reached the caller a retry would repeat or contradict it.
                        attempt.no_more_retries()
                        yield out
                    if shown.stopped:  # the length guard: stop reading; the response gets closed
                        parser.close()
                        end = StreamEnd("length")
                        break
                return GenerationResult(
                    text=shown.text,
                    finish_reason=end.finish_reason,
                    prompt_tokens=end.prompt_tokens,
                    completion_tokens=end.completion_tokens,
                    latency_s=time.monotonic() - start,
                    ttft_s=shown.ttft,
                    model=self.http.model,
                    attempts=attempt.number,
                )
        raise AssertionError("unreachable: the last attempt returns or raises")


def _read_limited(response: httpx.Response, limit: int) -> bytes:
    """Read at most ``limit`` bytes of the body (more is not needed to judge it)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def as_int(value: object) -> int | None:
    """A token count from a provider, or None when absent or not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
