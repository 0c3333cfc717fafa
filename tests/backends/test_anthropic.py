"""The Anthropic Messages backend against a real local server speaking the protocol."""

from __future__ import annotations

import time

import pytest

from backends import BackendError, get_backend
from tests.backends.helpers import API_KEY, CHAT, USER, fast_settings
from tests.protocol_server import ProtocolServer, expected_reply

pytestmark = pytest.mark.usefixtures("api_key")


def anthropic(server: ProtocolServer, model: str = "claude-echo", **settings: object):
    return get_backend("anthropic", fast_settings(server, model, **settings))


def test_it_streams_with_the_system_prompt_separated(server):
    # The server rejects a "system" role inside messages, as the real API does.
    s = anthropic(server).stream(CHAT)
    deltas = list(s)

    assert len(deltas) > 1
    assert "".join(deltas) == expected_reply("what is two plus two")
    assert s.result.finish_reason == "stop"
    assert (s.result.prompt_tokens, s.result.completion_tokens) == (10, 6)
    assert s.result.ttft_s is not None
    request = server.requests[-1]
    assert request.path == "/v1/messages"
    assert request.body["system"] == "You are terse."
    assert [m["role"] for m in request.body["messages"]] == ["user", "assistant", "user"]
    assert request.body["stream"] is True


def test_it_authenticates_with_x_api_key_and_a_version_header(server):
    anthropic(server).generate(USER)

    headers = server.requests[-1].headers
    assert headers["x-api-key"] == API_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers


def test_generate_returns_the_text_and_usage(server):
    result = anthropic(server).generate(CHAT, {"max_new_tokens": 3})

    assert result.text == expected_reply("what is two plus two", max_tokens=3)
    assert result.finish_reason == "length"
    assert (result.prompt_tokens, result.completion_tokens) == (10, 3)
    assert server.requests[-1].body["max_tokens"] == 3


def test_it_sends_its_decoding_parameters(server):
    anthropic(server).generate(USER, {"temperature": 0.5, "top_p": 0.8, "top_k": 40, "stop": ["two"]})

    body = server.requests[-1].body
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.5, 0.8, 40)
    assert body["stop_sequences"] == ["two"]


def test_greedy_is_temperature_zero_and_stop_sequences_cut(server):
    result = anthropic(server).stream(USER, {"do_sample": False, "stop": ["plus"]}).finish()

    assert server.requests[-1].body["temperature"] == 0
    assert result.text == expected_reply("what is two plus two", stop=["plus"])


@pytest.mark.parametrize("base", ["root_url", "base_url"])
def test_the_base_url_may_include_v1_or_not(server, base):
    backend = anthropic(server, base_url=getattr(server, base))

    assert backend.generate(USER).text == expected_reply("what is two plus two")
    assert server.requests[-1].path == "/v1/messages"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [500, 529])
def test_overloaded_and_server_errors_are_retried(server, stream, status):
    model = f"claude?status={status}&times=1"
    backend = anthropic(server, model)
    result = backend.stream(USER).finish() if stream else backend.generate(USER)

    assert result.attempts == 2
    assert len(server.requests_for(model)) == 2


def test_rate_limit_retry_after_is_honoured(server):
    model = "claude?status=429&times=1&retry_after=0.25"
    anthropic(server, model).generate(USER)

    first, second = server.requests_for(model)
    assert second.at - first.at >= 0.25


@pytest.mark.parametrize(("status", "kind"), [(400, "bad_request"), (401, "authentication"), (403, "authentication")])
def test_client_errors_are_classified_and_not_retried(server, status, kind):
    model = f"claude?status={status}"

    with pytest.raises(BackendError) as exc:
        anthropic(server, model).generate(USER)

    assert exc.value.kind == kind
    assert len(server.requests_for(model)) == 1


def test_an_error_event_before_text_is_retried(server):
    model = "claude?error_after=0&times=1"

    assert anthropic(server, model).stream(USER).finish().attempts == 2


def test_an_error_event_after_text_raises_the_classified_error(server):
    model = "claude?error_after=2"
    s = anthropic(server, model).stream(USER)

    with pytest.raises(BackendError) as exc:
        for _ in s:
            pass

    assert exc.value.kind == "server_error"
    assert "overloaded_error" in str(exc.value)
    assert s.text_so_far == "Echo: what "
    assert len(server.requests_for(model)) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_refusal_is_content_filtered(server, stream):
    backend = anthropic(server, "claude?filter=1")

    with pytest.raises(BackendError) as exc:
        backend.stream(USER).finish() if stream else backend.generate(USER)

    assert exc.value.kind == "content_filtered"


def test_a_stalled_stream_times_out(server):
    started = time.monotonic()

    with pytest.raises(BackendError) as exc:
        anthropic(server, "claude?stall_after=1", read_timeout=0.3).stream(USER).finish()

    assert exc.value.kind == "timeout"
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("model", ["claude?malformed_after=1", "claude?garbage=1"])
def test_malformed_streams_are_invalid_responses(server, model):
    with pytest.raises(BackendError) as exc:
        anthropic(server, model).stream(USER).finish()

    assert exc.value.kind == "invalid_response"
    assert len(server.requests_for(model)) == 1


def test_a_stream_that_ends_before_message_stop_is_a_connection_error(server):
    with pytest.raises(BackendError) as exc:
        anthropic(server, "claude?drop_after=3").stream(USER).finish()

    assert exc.value.kind == "connection"


def test_the_api_key_never_appears_in_errors(server):
    with pytest.raises(BackendError) as exc:
        anthropic(server, "claude?status=401&leak_key=1").generate(USER)

    assert "scripted failure" in str(exc.value)
    assert API_KEY not in str(exc.value) and API_KEY not in repr(exc.value)


def test_the_default_key_variable_is_anthropic_api_key(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    with pytest.raises(BackendError) as exc:
        get_backend("anthropic", {"model": "claude-x"}).generate(USER)

    assert exc.value.kind == "authentication"
    assert "ANTHROPIC_API_KEY" in str(exc.value)


def test_a_custom_base_url_still_defaults_to_anthropic_api_key(server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    backend = get_backend("anthropic", {"base_url": server.root_url, "model": "claude", "trust_env": False})

    with pytest.raises(BackendError) as exc:
        backend.generate(USER)

    assert "ANTHROPIC_API_KEY" in str(exc.value)
    assert server.requests == []
