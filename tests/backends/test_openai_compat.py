"""The OpenAI-compatible backend against a real local server speaking the protocol."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from backends import BackendError, get_backend
from tests.backends.helpers import API_KEY, CHAT, KEY_ENV, USER, fast_settings
from tests.protocol_server import ProtocolServer, expected_reply

pytestmark = pytest.mark.usefixtures("api_key")


def openai(server: ProtocolServer, model: str = "echo", **settings: object):
    return get_backend("openai", fast_settings(server, model, **settings))


def run(backend, messages=USER, params=None, *, stream: bool):
    """generate(), or stream() consumed to the end; returns the result."""
    if stream:
        return backend.stream(messages, params).finish()
    return backend.generate(messages, params)


def test_it_streams_text_deltas_and_then_the_result(server):
    s = openai(server).stream(CHAT)
    deltas = list(s)

    assert len(deltas) > 1
    assert "".join(deltas) == expected_reply("what is two plus two")
    assert s.result.text == "".join(deltas)
    assert s.result.finish_reason == "stop"
    assert s.result.completion_tokens == len(deltas)
    assert s.result.prompt_tokens == 10
    assert 0 < s.result.ttft_s <= s.result.latency_s
    body = server.requests[-1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == CHAT
    assert server.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"


def test_generate_returns_the_whole_text_with_usage(server):
    result = openai(server).generate(CHAT)

    assert result.text == expected_reply("what is two plus two")
    assert (result.prompt_tokens, result.completion_tokens) == (10, 6)
    assert result.finish_reason == "stop"
    assert result.ttft_s is None
    assert result.attempts == 1
    assert server.requests[-1].body["stream"] is False


def test_it_sends_the_decoding_parameters(server):
    params = {
        "max_new_tokens": 3,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["plus"],
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "seed": 7,
    }
    result = openai(server).generate(USER, params)

    body = server.requests[-1].body
    assert body["max_tokens"] == 3
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.7, 0.9, 7)
    assert (body["presence_penalty"], body["frequency_penalty"]) == (0.5, -0.5)
    assert body["stop"] == ["plus"]
    assert result.text == expected_reply("what is two plus two", max_tokens=3, stop=["plus"])


def test_greedy_is_sent_as_temperature_zero_and_length_is_reported(server):
    s = openai(server).stream(USER, {"do_sample": False, "max_new_tokens": 2})
    result = s.finish()

    assert server.requests[-1].body["temperature"] == 0
    assert result.text == "Echo: what "
    assert result.finish_reason == "length"


def test_max_tokens_field_extra_body_and_extra_sampling_params_are_configurable(server):
    backend = openai(
        server,
        max_tokens_field="max_completion_tokens",
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
        extra_sampling_params=True,
    )
    backend.generate(USER, {"max_new_tokens": 5, "top_k": 20, "repetition_penalty": 1.1})

    body = server.requests[-1].body
    assert body["max_completion_tokens"] == 5 and "max_tokens" not in body
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert (body["top_k"], body["repetition_penalty"]) == (20, 1.1)


def test_the_key_is_read_from_the_named_variable_at_call_time(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    backend = openai(server)  # built while the variable is missing
    monkeypatch.setenv(KEY_ENV, API_KEY)

    assert backend.generate(USER).text.startswith("Echo:")
    assert server.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"


def test_a_missing_key_variable_is_an_authentication_error_naming_it(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)

    with pytest.raises(BackendError) as exc:
        openai(server).generate(USER)

    assert exc.value.kind == "authentication"
    assert KEY_ENV in str(exc.value)
    assert exc.value.retryable is False
    assert server.requests == []


def test_a_wrong_key_is_an_authentication_error_without_retry(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-0000")

    with pytest.raises(BackendError) as exc:
        openai(server).generate(USER)

    assert exc.value.kind == "authentication"
    assert exc.value.status_code == 401
    assert len(server.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_it_retries_server_errors_then_succeeds(server, stream):
    model = "flaky?status=500&times=2"
    result = run(openai(server, model), stream=stream)

    assert result.text == expected_reply("what is two plus two")
    assert result.attempts == 3
    assert len(server.requests_for(model)) == 3


@pytest.mark.parametrize("stream", [False, True])
def test_it_gives_up_after_max_retries(server, stream):
    model = "down?status=503"

    with pytest.raises(BackendError) as exc:
        run(openai(server, model, max_retries=2), stream=stream)

    assert exc.value.kind == "server_error"
    assert exc.value.retryable is True
    assert exc.value.status_code == 503
    assert len(server.requests_for(model)) == 3


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "bad_request"),
        (401, "authentication"),
        (403, "authentication"),
        (404, "bad_request"),
        (422, "bad_request"),
    ],
)
def test_client_errors_are_not_retried(server, status, kind):
    model = f"bad?status={status}"

    with pytest.raises(BackendError) as exc:
        openai(server, model).generate(USER)

    assert exc.value.kind == kind
    assert exc.value.retryable is False
    assert f"HTTP {status}" in str(exc.value)
    assert len(server.requests_for(model)) == 1


@pytest.mark.parametrize("header", ["retry_after=0.3", "retry_after_ms=300"])
def test_rate_limits_wait_for_retry_after(server, header):
    model = f"limited?status=429&times=1&{header}"
    result = openai(server, model).generate(USER)

    first, second = server.requests_for(model)
    assert result.attempts == 2
    assert 0.3 <= second.at - first.at < 1.5


def test_retry_after_as_an_http_date_is_honoured(server):
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 2))
    model = f"dated?status=429&times=1&retry_after={when}"
    openai(server, model).generate(USER)

    first, second = server.requests_for(model)
    assert 0.5 <= second.at - first.at < 3.5  # the date has one-second resolution


def test_a_retry_after_longer_than_allowed_is_raised_with_the_wait(server):
    model = "slowdown?status=429&retry_after=120"

    with pytest.raises(BackendError) as exc:
        openai(server, model, max_retry_after=30).generate(USER)

    assert exc.value.kind == "rate_limit"
    assert exc.value.retry_after == 120
    assert exc.value.retryable is True
    assert len(server.requests_for(model)) == 1


def test_insufficient_quota_is_a_permanent_rate_limit(server):
    model = "broke?status=429&code=insufficient_quota"

    with pytest.raises(BackendError) as exc:
        openai(server, model).generate(USER)

    assert (exc.value.kind, exc.value.retryable) == ("rate_limit", False)
    assert len(server.requests_for(model)) == 1


def test_backoff_grows_exponentially_with_jitter(server):
    model = "down?status=500"
    with pytest.raises(BackendError):
        openai(server, model, max_retries=3, backoff_base=0.08, backoff_max=10).generate(USER)

    times = [r.at for r in server.requests_for(model)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    for n, gap in enumerate(gaps):
        ceiling = 0.08 * 2**n
        assert ceiling / 2 - 0.005 <= gap <= ceiling + 0.15, (n, gaps)


def test_a_stalled_stream_times_out_and_is_not_retried_after_text(server):
    model = "stuck?stall_after=2"
    backend = openai(server, model, read_timeout=0.3)
    s = backend.stream(USER)
    started = time.monotonic()

    deltas = []
    with pytest.raises(BackendError) as exc:
        for delta in s:
            deltas.append(delta)

    assert exc.value.kind == "timeout"
    assert exc.value.retryable is True  # a fresh call may work; this one already showed text
    assert deltas == ["Echo: ", "what "]
    assert time.monotonic() - started < 2
    assert len(server.requests_for(model)) == 1


def test_a_slow_first_byte_times_out_and_is_retried(server):
    model = "sleepy?delay=2&times=1"
    result = openai(server, model, read_timeout=0.3).stream(USER).finish()

    assert result.text == expected_reply("what is two plus two")
    assert result.attempts == 2
    assert len(server.requests_for(model)) == 2


def test_the_total_timeout_ends_a_stream_that_stalls_at_the_deadline(server):
    # Five chunks 0.1 s apart, then silence: the deadline, not the 30 s read timeout, must end it,
    # and on time even though the stream had been making progress.
    model = "stuck?chunk_delay=0.1&stall_after=5"
    started = time.monotonic()

    with pytest.raises(BackendError) as exc:
        openai(server, model, read_timeout=30, total_timeout=1.0).stream(USER).finish()

    assert exc.value.kind == "timeout"
    assert "total timeout" in str(exc.value)
    assert 0.95 <= time.monotonic() - started < 1.3


def test_the_total_timeout_bounds_a_slow_first_byte(server):
    started = time.monotonic()

    with pytest.raises(BackendError) as exc:
        openai(server, "sleepy?delay=5", read_timeout=30, total_timeout=0.5).generate(USER)

    assert exc.value.kind == "timeout"
    assert "total timeout" in str(exc.value)
    assert time.monotonic() - started < 1.0
    assert len(server.requests_for("sleepy?delay=5")) == 1


def test_the_total_timeout_ends_a_stream_that_never_finishes(server):
    model = "chatty?endless=1&chunk_delay=0.01"
    started = time.monotonic()

    with pytest.raises(BackendError) as exc:
        openai(server, model, total_timeout=0.5, max_response_chars=10**7).stream(USER).finish()

    assert exc.value.kind == "timeout"
    assert time.monotonic() - started < 1.5


def test_an_endless_stream_is_cut_at_max_response_chars(server):
    model = "chatty?endless=1"
    result = openai(server, model, max_response_chars=500).stream(USER).finish()

    assert len(result.text) == 500
    assert result.finish_reason == "length"


def test_an_endless_body_is_an_invalid_response(server):
    with pytest.raises(BackendError) as exc:
        openai(server, "chatty?endless=1", max_response_chars=100).generate(USER)

    assert exc.value.kind == "invalid_response"


@pytest.mark.parametrize("model", ["broken?malformed_after=1", "proxy?garbage=1"])
@pytest.mark.parametrize("stream", [False, True])
def test_malformed_responses_are_invalid_and_not_retried(server, model, stream):
    with pytest.raises(BackendError) as exc:
        run(openai(server, model), stream=stream)

    assert exc.value.kind == "invalid_response"
    assert exc.value.retryable is False
    assert len(server.requests_for(model)) == 1


def test_a_connection_dropped_mid_stream_raises_after_the_text(server):
    model = "cut?drop_after=2"
    s = openai(server, model).stream(USER)
    deltas = []

    with pytest.raises(BackendError) as exc:
        for delta in s:
            deltas.append(delta)

    assert exc.value.kind == "connection"
    assert len(deltas) == 2
    assert len(server.requests_for(model)) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_connection_dropped_before_any_text_is_retried(server, stream):
    model = "cut?drop_after=0&times=1"
    result = run(openai(server, model), stream=stream)

    assert result.attempts == 2
    assert result.text == expected_reply("what is two plus two")


def test_an_error_event_before_any_text_is_retried_and_after_text_raised(server):
    assert openai(server, "hiccup?error_after=0&times=1").stream(USER).finish().attempts == 2

    with pytest.raises(BackendError) as exc:
        openai(server, "hiccup?error_after=2").stream(USER).finish()
    assert exc.value.kind == "server_error"
    assert len(server.requests_for("hiccup?error_after=2")) == 1


def test_an_unreachable_server_is_a_connection_error_after_retries():
    free = ProtocolServer()
    url = free.base_url
    free._httpd.server_close()  # the port is closed: connections are refused
    backend = get_backend(
        "openai",
        {
            "base_url": url,
            "model": "x",
            "max_retries": 2,
            "backoff_base": 0.001,
            "connect_timeout": 1,
            "trust_env": False,
        },
    )

    with pytest.raises(BackendError) as exc:
        backend.generate(USER)

    assert exc.value.kind == "connection"
    assert exc.value.retryable is True


@pytest.mark.parametrize("stream", [False, True])
def test_content_filter_raises_content_filtered(server, stream):
    model = "prude?filter=1"

    with pytest.raises(BackendError) as exc:
        run(openai(server, model), stream=stream)

    assert exc.value.kind == "content_filtered"
    assert exc.value.retryable is False
    assert len(server.requests_for(model)) == 1


def test_a_stream_without_done_but_with_a_finish_reason_is_complete(server):
    result = openai(server, "terse?no_done=1&no_usage=1").stream(USER).finish()

    assert result.text == expected_reply("what is two plus two")
    assert result.completion_tokens is None


@pytest.mark.parametrize("model", ["leaky?status=401&leak_key=1", "leaky?status=500&leak_key=1"])
def test_the_api_key_never_appears_in_errors(server, model):
    with pytest.raises(BackendError) as exc:
        openai(server, model).generate(USER)

    assert "scripted failure" in str(exc.value)  # the server's message is kept...
    for text in (str(exc.value), repr(exc.value), str(exc.value.args), str(exc.value.to_dict())):
        assert API_KEY not in text  # ...without the key it echoed
    assert API_KEY not in repr(openai(server, model))


def test_closing_a_stream_early_ends_the_request(server):
    model = "chatty?endless=1"
    with openai(server, model).stream(USER) as s:
        first = [next(s) for _ in range(3)]

    assert len(first) == 3
    deadline = time.monotonic() + 3
    while server.in_flight(model) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.in_flight(model) == 0
    with pytest.raises(RuntimeError):
        _ = s.result


def _hammer(backends: list, n: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            backends[i % len(backends)].generate(USER)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_max_concurrency_limits_requests_in_flight_across_instances(server):
    model = "busy?delay=0.2"
    # two instances with the same base URL and model share one process-wide limit
    backends = [openai(server, model, max_concurrency=2) for _ in range(2)]

    assert _hammer(backends, 6) == []
    assert server.max_in_flight(model) == 2
    assert len(server.requests_for(model)) == 6


def test_without_a_limit_requests_run_concurrently(server):
    model = "busy-unlimited?delay=0.2"

    assert _hammer([openai(server, model)], 6) == []
    assert server.max_in_flight(model) > 2


def test_a_local_server_needs_no_key_by_default():
    with ProtocolServer() as open_server:  # no api_key: like a local vLLM
        backend = get_backend("openai", {"base_url": open_server.base_url, "model": "local", "trust_env": False})

        assert backend.generate(USER).text == expected_reply("what is two plus two")
        assert "authorization" not in open_server.requests[-1].headers


def test_extra_headers_are_sent_and_secret_ones_redacted(server):
    backend = openai(server, "leaky?status=400&leak_key=1", headers={"X-Org": "arena"})
    with pytest.raises(BackendError):
        backend.generate(USER)
    assert server.requests[-1].headers["x-org"] == "arena"

    with ProtocolServer(api_key="gateway-token-123") as gateway:
        settings = fast_settings(gateway, "leaky?status=401&leak_key=1", api_key_env=None)
        settings["headers"] = {"Authorization": "Bearer gateway-token-123"}
        with pytest.raises(BackendError) as exc:
            get_backend("openai", settings).generate(USER)
    assert "gateway-token-123" not in str(exc.value)
