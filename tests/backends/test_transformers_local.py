"""The local transformers backend on a tiny GPT-2 built, trained for a second and saved by the test.

The model is loaded back through the normal path (``from_pretrained`` on the directory). A few dozen
optimiser steps on four question/answer pairs make its greedy answers readable words, so streaming,
stop strings and batching are exercised on real text rather than byte noise.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

pytestmark = pytest.mark.gpu  # "needs torch and transformers"; runs on CPU here

from backends import BackendError, InvalidRequest, get_backend  # noqa: E402
from backends.transformers_local import loaded_models, unload_all  # noqa: E402
from tests.tiny_chat_model import GREEDY, PAIRS, ask  # noqa: E402
from tests.tiny_chat_model import build as _build  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # A tiny model gains nothing from threads and loses a lot when the machine is busy.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    unload_all()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-chat-gpt2")
    _build(directory, with_template=True)
    return directory


@pytest.fixture(scope="module")
def backend(model_dir: Path):
    return get_backend("transformers", {"model_path": str(model_dir), "device": "cpu", "batch_wait_ms": 20})


def test_greedy_answers_are_deterministic_words(backend):
    first = backend.generate(ask("What is two plus two?"), GREEDY)
    second = backend.generate(ask("What is two plus two?"), GREEDY)

    assert first.text == second.text == "Two plus two is four."
    assert first.finish_reason == "stop"
    assert first.prompt_tokens == len(
        backend.loaded().tokenizer("<|user|>What is two plus two?<|end|><|assistant|>")["input_ids"]
    )
    assert 0 < first.completion_tokens <= 24
    assert first.ttft_s is None and first.latency_s > 0


def test_streaming_concatenates_to_the_generated_text(backend):
    for question, _ in PAIRS:
        expected = backend.generate(ask(question), GREEDY)
        s = backend.stream(ask(question), GREEDY)
        deltas = list(s)

        assert "".join(deltas) == expected.text
        assert s.result.text == expected.text
        assert s.result.completion_tokens == expected.completion_tokens
        assert s.result.finish_reason == expected.finish_reason
        assert 0 < s.result.ttft_s <= s.result.latency_s
    assert len(deltas) > 1  # word by word, not one lump


def test_a_batch_gives_the_same_answers_as_single_calls(backend):
    questions = [q for q, _ in PAIRS] + ["Tell me about Arena please, in detail."]
    singles = [backend.generate(ask(q), GREEDY).text for q in questions]

    batched = backend.generate_many([ask(q) for q in questions], GREEDY)

    assert [r.text for r in batched] == singles
    assert backend.batch_history()[-1] == len(questions)


def test_rows_with_their_own_stop_and_max_tokens_share_a_batch_and_match_single_calls(backend):
    """Pre-generation batches requests whose limits differ (a prompt near the context end gets fewer
    tokens, models share weights with other stops): each row stops at its own limit, as alone."""
    questions = [q for q, _ in PAIRS] + ["Tell me about Arena please, in detail."]
    params = [
        {**GREEDY, "stop": [" is "]},  # cut early by its stop string
        {"do_sample": False, "max_new_tokens": 3},  # cut by its own token limit
        GREEDY,  # runs to its end of text
        {**GREEDY, "stop": ["side", "zzz"], "max_new_tokens": 40},
        {"do_sample": False, "max_new_tokens": 1},
    ]
    singles = [backend.generate(ask(q), p) for q, p in zip(questions, params, strict=True)]
    before = len(backend.batch_history())

    batched = backend.generate_many([ask(q) for q in questions], params)

    assert backend.batch_history()[before:] == [len(questions)]  # one generate call for all five
    got = [(r.text, r.finish_reason, r.completion_tokens) for r in batched]
    assert got == [(r.text, r.finish_reason, r.completion_tokens) for r in singles]
    assert got[0][:2] == ("Two plus two", "stop")
    assert got[1][1:] == ("length", 3) and got[4][1:] == ("length", 1)
    assert got[2][0].startswith("The quick brown fox jumps")


def test_one_generate_many_call_is_one_batch_without_waiting_for_it(model_dir):
    """The requests of one call reach the batcher together: no waiting window (here 0 ms) and no pause
    of the submitting thread can cut them into several batches (the pre-generation batches rely on it)."""
    eager = get_backend(
        "transformers", {"model_path": str(model_dir), "device": "cpu", "batch_wait_ms": 0, "max_batch_size": 8}
    )
    questions = [q for q, _ in PAIRS] + ["Tell me about Arena please, in detail."]
    for _ in range(3):
        before = len(eager.batch_history())
        eager.generate_many([ask(q) for q in questions], GREEDY)
        assert eager.batch_history()[before:] == [len(questions)]


def test_a_list_of_params_must_match_the_conversations(backend):
    with pytest.raises(InvalidRequest):
        backend.generate_many([ask("hi"), ask("ho")], [GREEDY])


def test_concurrent_requests_are_served_as_one_batch(backend, model_dir):
    patient = get_backend(
        "transformers", {"model_path": str(model_dir), "device": "cpu", "batch_wait_ms": 500, "max_batch_size": 4}
    )
    questions = [q for q, _ in PAIRS]
    expected = {q: backend.generate(ask(q), GREEDY).text for q in questions}
    answers: dict[str, str] = {}
    barrier = threading.Barrier(len(questions))
    batches_before = len(patient.batch_history())

    def call(q: str) -> None:
        barrier.wait()
        answers[q] = patient.generate(ask(q), GREEDY).text

    threads = [threading.Thread(target=call, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert answers == expected
    assert patient.loaded() is backend.loaded()
    assert patient.batch_history()[batches_before:] == [4]  # full batch: no need to wait out the 500 ms


def test_streams_and_batches_can_run_together_from_many_threads(backend):
    questions = [q for q, _ in PAIRS]
    expected = {q: backend.generate(ask(q), GREEDY).text for q in questions}
    got: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def call(q: str, stream: bool) -> None:
        try:
            text = backend.stream(ask(q), GREEDY).finish().text if stream else backend.generate(ask(q), GREEDY).text
            got.append((q, text))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(q, i % 2 == 0)) for i, q in enumerate(questions * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(got) == sorted((q, expected[q]) for q in questions * 2)


def test_a_seed_reproduces_a_sample(backend):
    params = {"seed": 1234, "temperature": 1.5, "top_k": 50, "max_new_tokens": 16}
    samples = [backend.generate(ask("What does Arena do?"), params).text for _ in range(2)]
    streamed = backend.stream(ask("What does Arena do?"), params).finish().text
    others = {backend.generate(ask("What does Arena do?"), {**params, "seed": s}).text for s in range(5)}

    assert samples[0] == samples[1] == streamed
    assert len(others) > 1  # different seeds sample different texts


def test_seeded_samples_are_reproducible_when_requested_together(backend):
    params = {"seed": 99, "temperature": 1.3, "max_new_tokens": 12}
    alone = backend.generate(ask("Hello there, how are you?"), params).text

    together = backend.generate_many([ask("Hello there, how are you?")] * 3, params)

    assert [r.text for r in together] == [alone] * 3


def test_stop_strings_cut_the_text_in_both_paths(backend):
    params = {**GREEDY, "stop": [" is "]}

    result = backend.generate(ask("What is two plus two?"), params)
    streamed = backend.stream(ask("What is two plus two?"), params).finish()

    assert result.text == streamed.text == "Two plus two"
    assert result.finish_reason == streamed.finish_reason == "stop"


def test_max_new_tokens_truncates_with_finish_length(backend):
    result = backend.generate(ask("Name a fast animal."), {"do_sample": False, "max_new_tokens": 3})

    assert result.completion_tokens == 3
    assert result.finish_reason == "length"
    assert "The quick brown fox jumps over the lazy dog.".startswith(result.text)


def test_beam_search_and_repetition_penalty_run(backend):
    beams = backend.generate(ask("What is two plus two?"), {**GREEDY, "num_beams": 3})
    streamed = backend.stream(ask("What is two plus two?"), {**GREEDY, "num_beams": 3})

    assert list(streamed) == [beams.text]  # beam search cannot stream: one delta
    penalised = backend.generate(ask("What is two plus two?"), {**GREEDY, "repetition_penalty": 1.3})
    assert penalised.text == backend.generate(ask("What is two plus two?"), {**GREEDY, "repetition_penalty": 1.3}).text


def test_multi_turn_conversations_use_the_chat_template(backend):
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there, how are you?"},
        {"role": "assistant", "content": "I am fine."},
        {"role": "user", "content": "What is two plus two?"},
    ]
    rendered = backend.loaded().tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)

    result = backend.generate(chat, GREEDY)

    assert result.prompt_tokens == len(backend.loaded().tokenizer(rendered)["input_ids"])
    assert result.text


def test_closing_a_stream_early_frees_the_model(backend):
    s = backend.stream(ask("Name a fast animal."), {**GREEDY, "max_new_tokens": 60})
    first = next(s)
    s.close()

    assert first
    assert backend.generate(ask("What is two plus two?"), GREEDY).text == "Two plus two is four."


def test_the_model_is_loaded_once_per_process(backend, model_dir):
    again = get_backend("transformers", {"model_path": str(model_dir), "device": "cpu"})

    assert again.loaded() is backend.loaded()
    assert sum(1 for s in loaded_models() if s.model_path == str(model_dir) and s.device == "cpu") == 1


def test_a_tokenizer_without_a_chat_template_gets_the_fallback(tmp_path):
    _build(tmp_path, with_template=False)
    backend = get_backend("transformers", {"model_path": str(tmp_path), "device": "cpu", "dtype": "fp32"})
    prompt = "User: What is two plus two?\n\nAssistant:"

    result = backend.generate(ask("What is two plus two?"), GREEDY)

    assert result.prompt_tokens == len(backend.loaded().tokenizer(prompt)["input_ids"])
    assert "\n\nUser:" not in result.text


def test_device_auto_loads_through_accelerate(model_dir):
    backend = get_backend("transformers", {"model_path": str(model_dir), "device": "auto"})

    assert backend.generate(ask("What is two plus two?"), GREEDY).text == "Two plus two is four."
    assert backend.loaded().settings.device == "auto"
    assert backend.loaded().model.device.type == "cpu"  # the only device here


def test_a_prompt_longer_than_the_context_is_rejected(backend):
    with pytest.raises(InvalidRequest) as exc:
        backend.generate(ask("two plus two " * 100), GREEDY)

    assert exc.value.field == "messages"
    assert "context is 128" in str(exc.value)


def test_a_missing_model_is_a_clear_permanent_error(tmp_path):
    backend = get_backend("transformers", {"model_path": str(tmp_path / "nope"), "local_files_only": True})

    with pytest.raises(BackendError) as exc:
        backend.generate(ask("hi"), GREEDY)

    assert exc.value.kind == "bad_request"
    assert exc.value.retryable is False
    assert "nope" in str(exc.value)
