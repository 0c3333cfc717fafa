"""Registry, static backend, streaming object, errors and the protocol helpers."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from backends import BACKENDS, Backend, BackendError, GenerationResult, InvalidRequest, available_kinds, get_backend
from backends.base import ShownText, StopFilter
from backends.errors import redact
from backends.http_client import iter_events, parse_retry_after
from tests.backends.helpers import CHAT, USER

# -- registry -----------------------------------------------------------------------------------------


def test_the_registry_knows_the_four_kinds():
    assert available_kinds() == ["anthropic", "openai", "static", "transformers"]
    for kind in available_kinds():
        settings = {"model": "m"} if kind in ("openai", "anthropic") else {"model_path": "m"}
        backend = get_backend(kind, settings if kind != "static" else {})
        assert isinstance(backend, Backend)
        assert backend.kind == kind


def test_an_unknown_kind_is_a_clear_error():
    with pytest.raises(InvalidRequest) as exc:
        get_backend("gemini", {})

    assert "gemini" in str(exc.value) and "openai" in str(exc.value)


def test_backend_modules_are_imported_lazily_and_never_import_django():
    code = (
        "import sys, backends\n"
        "assert 'backends.transformers_local' not in sys.modules\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "backends.get_backend('transformers', {'model_path': 'x'})\n"
        "assert 'torch' not in sys.modules, 'building a backend must not import torch'\n"
        "backends.get_backend('openai', {'model': 'm'}); backends.get_backend('anthropic', {'model': 'm'})\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))


def test_every_registered_target_exists():
    for kind in BACKENDS:
        assert issubclass(__import__("backends").backend_class(kind), Backend)


# -- static backend -----------------------------------------------------------------------------------


def test_the_static_backend_answers_the_canned_text_with_the_prompt():
    backend = get_backend("static", {"text": "You asked: {prompt}. {Braces} stay."})

    result = backend.generate(CHAT)

    assert result.text == "You asked: what is two plus two. {Braces} stay."
    assert result.finish_reason == "stop"
    assert result.completion_tokens == 9
    assert result.ttft_s is None


def test_the_static_backend_streams_words_and_matches_generate():
    backend = get_backend("static", {"responses": {"hi": "Hello there, friend."}, "text": "default"})
    messages = [{"role": "user", "content": "hi"}]

    s = backend.stream(messages)
    deltas = list(s)

    assert deltas == ["Hello ", "there, ", "friend."]
    assert s.result.text == backend.generate(messages).text
    assert s.result.ttft_s is not None
    assert backend.generate(USER).text == "default"


def test_the_static_backend_honours_max_tokens_and_stop():
    backend = get_backend("static", {"text": "one two three four five"})

    assert backend.generate(USER, {"max_new_tokens": 2}).text == "one two "
    assert backend.generate(USER, {"max_new_tokens": 2}).finish_reason == "length"
    result = backend.stream(USER, {"stop": ["hree"]}).finish()
    assert (result.text, result.finish_reason) == ("one two t", "stop")


def test_the_static_backend_can_rehearse_failures():
    backend = get_backend("static", {"error": "rate_limit", "error_message": "slow down"})

    with pytest.raises(BackendError) as exc:
        backend.generate(USER)

    assert (exc.value.kind, exc.value.retryable, exc.value.message) == ("rate_limit", True, "slow down")


def test_the_static_backend_chunk_delay_paces_the_stream():
    backend = get_backend("static", {"text": "a b c d", "chunk_delay": 0.05})
    started = time.monotonic()

    backend.stream(USER).finish()

    assert time.monotonic() - started >= 0.15


def test_generate_many_answers_each_conversation():
    backend = get_backend("static")
    results = backend.generate_many([USER, [{"role": "user", "content": "x"}]])

    assert [r.text for r in results] == ["You said: what is two plus two", "You said: x"]


# -- streaming object ---------------------------------------------------------------------------------


def test_the_result_is_only_available_after_the_stream_ends():
    s = get_backend("static", {"text": "a b c"}).stream(USER)

    with pytest.raises(RuntimeError):
        _ = s.result
    assert next(s) == "a "
    assert s.text_so_far == "a "
    assert not s.done
    result = s.finish()
    assert isinstance(result, GenerationResult)
    assert s.done and result.text == "a b c"
    assert list(s) == []  # exhausted


# -- stop filter --------------------------------------------------------------------------------------


def test_the_stop_filter_never_shows_text_that_a_stop_string_removes():
    f = StopFilter(("</answer>",))
    shown = [f.push(d) for d in ["The answer is 4", "</ans", "wer> and more"]]

    assert shown == ["The answer is 4", "", ""]
    assert (f.stopped, f.reason) == (True, "stop")


def test_the_stop_filter_releases_a_false_alarm():
    f = StopFilter(("STOP",))

    assert f.push("go ST") == "go "
    assert f.push("ATION") == "STATION"
    assert f.push(" S") == " "
    assert f.flush() == "S"
    assert not f.stopped


def test_the_stop_filter_enforces_a_character_budget():
    f = StopFilter(max_chars=5)

    assert f.push("abc") == "abc"
    assert f.push("defg") == "de"
    assert (f.stopped, f.reason) == (True, "length")
    assert f.push("more") == "" and f.flush() == ""


def test_shown_text_stops_reading_at_a_stop_string_and_keeps_what_was_shown():
    read = []

    def deltas():
        for d in ["The answer", " is 4</ans", "wer> and more", "never read"]:
            read.append(d)
            yield d

    shown = ShownText(time.monotonic(), ("</answer>",))

    assert list(shown.through(deltas())) == ["The answer", " is 4"]
    assert shown.text == "The answer is 4" and shown.stopped
    assert read == ["The answer", " is 4</ans", "wer> and more"]


def test_shown_text_times_the_first_visible_character_not_a_held_back_one():
    start = time.monotonic()
    shown = ShownText(start, ("STOP",))

    assert shown.push("ST") == "" and shown.ttft is None  # could still become the stop string
    time.sleep(0.02)
    assert shown.push("ART") == "START"
    assert shown.ttft is not None and shown.ttft >= 0.02
    assert list(shown.through(["!"])) == ["!"] and shown.text == "START!"


# -- errors and wire helpers ----------------------------------------------------------------------------


def test_backend_error_defaults_retryable_from_the_kind():
    assert BackendError("rate_limit", "x").retryable
    assert BackendError("server_error", "x").retryable
    assert not BackendError("authentication", "x").retryable
    assert not BackendError("content_filtered", "x").retryable
    assert BackendError("bad_request", "x").permanent
    with pytest.raises(ValueError):
        BackendError("oops", "x")  # type: ignore[arg-type]


def test_backend_error_to_dict_is_plain_data():
    err = BackendError("rate_limit", "slow down", retry_after=2.5, status_code=429)

    assert err.to_dict() == {
        "kind": "rate_limit",
        "message": "slow down",
        "retryable": True,
        "retry_after": 2.5,
        "status_code": 429,
    }


def test_redact_replaces_every_secret():
    assert redact("key sk-abcdef and sk-abcdef", ["sk-abcdef", None, ""]) == "key *** and ***"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),  # in the past
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers, expected):
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(headers, now=now) == expected


def event_stream(*chunks: bytes, content_type: str = "text/event-stream") -> httpx.Response:
    """A streamed response whose body arrives in ``chunks`` (as read from a socket)."""
    return httpx.Response(200, headers={"content-type": content_type}, content=iter(chunks))


def test_iter_events_parses_events_comments_and_multiline_data():
    body = b": hello\nevent: a\ndata: 1\ndata: 2\n\ndata:3\n\nid: 7\nretry: 10\ndata: {}\n\n"

    events = list(iter_events(event_stream(body), "test"))

    assert [(e.event, e.data) for e in events] == [("a", "1\n2"), ("message", "3"), ("message", "{}")]


def test_iter_events_joins_lines_split_across_reads_and_any_line_ending():
    response = event_stream(b"event: a\r\nda", b"ta: x\r", b"\ndata: y\r\r", b"data: z\n\n")

    assert [(e.event, e.data) for e in iter_events(response, "test")] == [("a", "x\ny"), ("message", "z")]


def test_iter_events_skips_events_without_data_and_drops_a_cut_off_one():
    response = event_stream(b"event: ping\n\nid: 1\n\n\ndata: kept\n\ndata: cut off")

    assert [e.data for e in iter_events(response, "test")] == ["kept"]


@pytest.mark.parametrize("content_type", ["text/html", "application/json", ""])
def test_iter_events_rejects_a_body_that_is_not_an_event_stream(content_type):
    response = event_stream(b"<html>502 Bad Gateway</html>", content_type=content_type)

    with pytest.raises(BackendError) as exc:
        list(iter_events(response, "test"))

    assert exc.value.kind == "invalid_response" and exc.value.retryable is False
    assert "did not answer with an event stream" in str(exc.value)


def test_iter_events_accepts_a_charset_in_the_content_type():
    response = event_stream("data: caf\u00e9\n\n".encode(), content_type="text/event-stream; charset=utf-8")

    assert [e.data for e in iter_events(response, "test")] == ["caf\u00e9"]
