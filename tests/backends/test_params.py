"""Decoding parameters, settings and message validation, per backend."""

from __future__ import annotations

import importlib.util

import pytest

from backends import BackendError, DecodingParams, InvalidRequest, get_backend, normalize_messages
from tests.backends.helpers import USER


def test_defaults_sample_and_are_not_deterministic():
    params = DecodingParams()

    assert params.do_sample is True
    assert params.is_deterministic is False
    assert params.non_default() == {}


@pytest.mark.parametrize(
    "data", [{"do_sample": False}, {"temperature": 0}, {"seed": 3}, {"do_sample": False, "num_beams": 4}]
)
def test_greedy_or_a_seed_is_deterministic(data):
    assert DecodingParams.from_dict(data).is_deterministic


def test_temperature_zero_means_greedy():
    params = DecodingParams.from_dict({"temperature": 0})

    assert (params.do_sample, params.temperature) == (False, None)
    assert params == DecodingParams(do_sample=False)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": "12"}, "max_new_tokens"),
        ({"max_new_tokens": True}, "max_new_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"seed": -1}, "seed"),
        ({"do_sample": "yes"}, "do_sample"),
        ({"num_beams": 0}, "num_beams"),
        ({"stop": [""]}, "stop[0]"),
        ({"stop": [1]}, "stop[0]"),
        ({"stop": 5}, "stop"),
        ({"stop": ["x"] * 17}, "stop"),
        ({"do_sample": False, "temperature": 0.7}, "temperature"),
        ({"do_sample": False, "top_k": 5}, "top_k"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(data, field):
    with pytest.raises(InvalidRequest) as exc:
        DecodingParams.from_dict(data)

    assert exc.value.field == field
    assert str(exc.value).startswith(f"[bad_request] {field}:")
    assert exc.value.retryable is False
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, BackendError)


@pytest.mark.parametrize(("key", "hint"), [("max_tokens", "max_new_tokens"), ("temprature", "temperature")])
def test_unknown_fields_are_rejected_with_a_suggestion(key, hint):
    with pytest.raises(InvalidRequest) as exc:
        DecodingParams.from_dict({key: 1})

    assert exc.value.field == key
    assert f"did you mean {hint!r}" in str(exc.value)


def test_from_dict_accepts_a_string_stop_and_none_as_default():
    params = DecodingParams.from_dict({"stop": "###", "seed": None, "temperature": 1})

    assert params.stop == ("###",)
    assert params.seed is None
    assert params.temperature == 1.0 and isinstance(params.temperature, float)


def test_to_dict_round_trips():
    params = DecodingParams(max_new_tokens=64, temperature=0.7, top_p=0.9, stop=("a", "b"), seed=1)

    assert DecodingParams.from_dict(params.to_dict()) == params


def test_the_cache_key_is_stable_and_sensitive():
    a = DecodingParams.from_dict({"temperature": 1, "stop": ["x"], "seed": 5})
    b = DecodingParams.from_dict({"seed": 5, "stop": "x", "temperature": 1.0})

    assert a.cache_key() == b.cache_key()
    assert a.cache_key() != a.replace(seed=6).cache_key()
    assert len(a.cache_key()) == 64
    # pinned: a change of the key format must be deliberate (it invalidates every cached response)
    assert DecodingParams().cache_key() == "81a13ed2cf08c243548b9dbc1d47b9a600b4c378273491b8e25af9601d6c76a7"
    assert DecodingParams(do_sample=False).cache_key() == DecodingParams(temperature=0).cache_key()


@pytest.mark.parametrize(
    ("kind", "settings", "param"),
    [
        ("openai", {"model": "m"}, {"num_beams": 2}),
        ("openai", {"model": "m"}, {"repetition_penalty": 1.1}),
        ("openai", {"model": "m"}, {"top_k": 5}),
        ("anthropic", {"model": "m"}, {"repetition_penalty": 1.1}),
        ("anthropic", {"model": "m"}, {"seed": 1}),
        ("anthropic", {"model": "m"}, {"presence_penalty": 0.5}),
        ("anthropic", {"model": "m"}, {"num_beams": 2}),
        ("transformers", {"model_path": "/nowhere"}, {"presence_penalty": 0.5}),
        ("transformers", {"model_path": "/nowhere"}, {"frequency_penalty": 0.5}),
    ],
)
def test_each_backend_rejects_what_it_does_not_support_before_sending(kind, settings, param):
    backend = get_backend(kind, settings)
    name = next(iter(param))

    with pytest.raises(InvalidRequest) as exc:
        backend.generate(USER, param)

    assert exc.value.field == name
    assert f"not supported by the {kind!r} backend" in str(exc.value)
    with pytest.raises(InvalidRequest):
        backend.stream(USER, param)  # raised at the call, not at the first next()


def test_anthropic_temperature_is_at_most_one():
    with pytest.raises(InvalidRequest) as exc:
        get_backend("anthropic", {"model": "m"}).check_params(DecodingParams(temperature=1.5))

    assert exc.value.field == "temperature"


def test_openai_accepts_top_k_and_repetition_penalty_when_the_server_does():
    backend = get_backend("openai", {"model": "m", "base_url": "http://x/v1", "extra_sampling_params": True})

    backend.check_params(DecodingParams(top_k=5, repetition_penalty=1.1))
    with pytest.raises(InvalidRequest):
        backend.check_params(DecodingParams(num_beams=2))


def test_the_static_backend_accepts_every_parameter():
    params = DecodingParams(
        temperature=0.3, top_p=0.5, top_k=3, presence_penalty=1, frequency_penalty=1, repetition_penalty=1.2, seed=1
    )
    get_backend("static").check_params(params.replace(num_beams=3))


@pytest.mark.parametrize(
    ("kind", "settings", "field"),
    [
        ("openai", {}, "settings.model"),
        ("openai", {"model": "m", "base_url": "ftp://x"}, "settings.base_url"),
        ("openai", {"model": "m", "api_key": "sk-123"}, "settings.api_key"),
        ("openai", {"model": "m", "api_key_env": "sk-live-123"}, "settings.api_key_env"),
        ("openai", {"model": "m", "max_retries": -1}, "settings.max_retries"),
        ("openai", {"model": "m", "read_timeout": "5"}, "settings.read_timeout"),
        ("openai", {"model": "m", "headers": {"x": 1}}, "settings.headers"),
        ("openai", {"model": "m", "modle": "x"}, "settings.modle"),
        ("openai", {"model": "m", "max_tokens_field": "n"}, "settings.max_tokens_field"),
        ("anthropic", {"model": "m", "max_concurrency": 0}, "settings.max_concurrency"),
        ("transformers", {}, "settings.model_path"),
        ("transformers", {"model_path": "x", "dtype": "int3"}, "settings.dtype"),
        ("transformers", {"model_path": "x", "device": "gpu"}, "settings.device"),
        ("transformers", {"model_path": "x", "quantization": "2bit"}, "settings.quantization"),
        ("static", {"text": 5}, "settings.text"),
        ("static", {"error": "meltdown"}, "settings.error"),
    ],
)
def test_bad_settings_are_rejected_at_construction_naming_the_key(kind, settings, field):
    with pytest.raises(InvalidRequest) as exc:
        get_backend(kind, settings)

    assert exc.value.field == field


def test_a_typo_in_settings_gets_a_suggestion():
    with pytest.raises(InvalidRequest) as exc:
        get_backend("openai", {"model": "m", "max_retires": 2})

    assert "did you mean 'max_retries'" in str(exc.value)


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_quantization_without_bitsandbytes_says_what_is_missing():
    with pytest.raises(InvalidRequest) as exc:
        get_backend("transformers", {"model_path": "x", "quantization": "4bit"})

    assert exc.value.field == "settings.quantization"
    assert "bitsandbytes" in str(exc.value)


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "messages"),
        ("hello", "messages"),
        ([{"role": "user"}], "messages[0].content"),
        ([{"role": "robot", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}], "messages[0].content[0]"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "messages"),
        (["hi"], "messages[0]"),
    ],
)
def test_bad_messages_are_rejected(messages, field):
    with pytest.raises(InvalidRequest) as exc:
        normalize_messages(messages)

    assert exc.value.field == field


def test_text_parts_are_joined():
    messages = normalize_messages(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    )

    assert messages == [{"role": "user", "content": "ab"}]
