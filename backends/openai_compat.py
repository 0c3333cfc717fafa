"""OpenAI-compatible chat completions (OpenAI, vLLM, SGLang, TGI, llama.cpp, Together, ...).

Settings (besides the HTTP ones in :mod:`backends.http_client`):

- ``base_url``: default ``https://api.openai.com/v1``; requests go to ``{base_url}/chat/completions``.
- ``model``: the served model name (required).
- ``api_key_env``: the NAME of the environment variable holding the key (default ``OPENAI_API_KEY``
  for the default base URL; none, i.e. no ``Authorization`` header, for any other URL unless set).
- ``max_tokens_field``: ``"max_tokens"`` (default; what compatible servers read) or
  ``"max_completion_tokens"`` (required by OpenAI's reasoning models).
- ``extra_sampling_params``: true to send ``top_k`` and ``repetition_penalty`` (vLLM / SGLang accept
  them); otherwise they are rejected as unsupported.
- ``extra_body``: an object merged into every request body (e.g. ``{"chat_template_kwargs": {...}}``).

``num_beams`` is never supported. Greedy decoding is sent as ``temperature: 0``.

Content filtering: a ``finish_reason`` of ``"content_filter"`` (or a refusal message, or an HTTP error
whose code names the content filter) raises ``BackendError(kind="content_filtered")``, not retryable.
We raise rather than return a flagged result because a filtered answer is not a fair side of a
battle; when streaming, the deltas already yielded stay with the caller, who should discard them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from typing import Any, NoReturn

from httpx_sse import ServerSentEvent

from backends.base import COMMON_PARAMS, Message, SettingsReader
from backends.errors import BackendError, InvalidRequest
from backends.http_client import HttpBackend, ParsedResponse, StreamEnd, as_int, invalid, parse_json_event
from backends.params import DecodingParams

# Decoding parameters sent by their own names (``stop`` too); ``top_k`` and ``repetition_penalty`` only
# reach here where ``extra_sampling_params`` allows them.
_SAMPLING = ("temperature", "top_p", "top_k", "repetition_penalty", "presence_penalty", "frequency_penalty", "seed")


class OpenAICompatBackend(HttpBackend):
    """Chat completions over HTTP, streamed with Server-Sent Events."""

    kind = "openai"
    provider = "OpenAI-compatible API"
    default_base_url = "https://api.openai.com/v1"
    default_api_key_env = "OPENAI_API_KEY"
    key_env_only_for_default_url = True
    supported_params = COMMON_PARAMS | {"temperature", "top_p", "stop", "presence_penalty", "frequency_penalty", "seed"}
    finish_reasons = {"stop": "stop", "length": "length", "eos": "stop", "max_tokens": "length"}
    filtered_reason = "content_filter"
    filtered_text = "stopped the answer with its content filter"

    def _read_provider_settings(self, reader: SettingsReader) -> None:
        self.max_tokens_field: str = reader.choice(
            "max_tokens_field", ("max_tokens", "max_completion_tokens"), "max_tokens"
        )
        if reader.bool("extra_sampling_params", False):
            self.supported_params = self.supported_params | {"top_k", "repetition_penalty"}
        extra = reader.raw("extra_body")
        if extra is not None and not isinstance(extra, Mapping):
            raise InvalidRequest("settings.extra_body", "must be an object")
        self.extra_body: dict[str, Any] = dict(extra or {})

    def _url(self) -> str:
        return f"{self.http.base_url}/chat/completions"

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def _body(self, messages: list[Message], params: DecodingParams, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.extra_body,
            "model": self.http.model,
            "messages": [dict(m) for m in messages],
            self.max_tokens_field: params.max_new_tokens,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        body.update(self._sampling_fields(params, _SAMPLING))
        return body

    def _raise_payload_error(self, error: object) -> NoReturn:
        """An error object inside a 200 response (vLLM and OpenAI send these mid-stream)."""
        if isinstance(error, dict):
            message, code = str(error.get("message", "")), str(error.get("code") or error.get("type") or "")
        else:
            message, code = str(error), ""
        kind = "content_filtered" if "content_filter" in code else "server_error"
        detail = f"{self.provider} reported an error: {message[:500]}" + (f" ({code})" if code else "")
        raise BackendError(kind, detail)

    def _parse_response(self, data: dict[str, Any]) -> ParsedResponse:
        if data.get("error"):
            self._raise_payload_error(data["error"])
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise invalid(self.provider, "no choices in the response")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise invalid(self.provider, "choice without a message")
        content = message.get("content")
        if content is None and message.get("refusal"):
            raise BackendError("content_filtered", f"{self.provider} refused: {str(message['refusal'])[:300]}")
        if content is not None and not isinstance(content, str):
            raise invalid(self.provider, "message content is not a string")
        text = content or ""
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return ParsedResponse(
            text=text,
            finish_reason=self._finish(choices[0].get("finish_reason"), len(text)),
            prompt_tokens=as_int(usage.get("prompt_tokens")),
            completion_tokens=as_int(usage.get("completion_tokens")),
        )

    def _parse_stream(self, events: Iterator[ServerSentEvent]) -> Generator[str, None, StreamEnd]:
        finish: object = None
        seen_finish = False
        prompt_tokens = completion_tokens = None
        length = 0
        for event in events:
            if event.data.strip() == "[DONE]":
                return StreamEnd(self._finish(finish, length), prompt_tokens, completion_tokens)
            data = parse_json_event(event, self.provider)
            if data.get("error"):
                self._raise_payload_error(data["error"])
            usage = data.get("usage")
            if isinstance(usage, dict):
                prompt_tokens = as_int(usage.get("prompt_tokens"))
                completion_tokens = as_int(usage.get("completion_tokens"))
            choices = data.get("choices") or []
            if not isinstance(choices, list):
                raise invalid(self.provider, "'choices' is not a list")
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if not isinstance(delta, dict):
                    raise invalid(self.provider, "'delta' is not an object")
                content = delta.get("content")
                if content is not None and not isinstance(content, str):
                    raise invalid(self.provider, "delta content is not a string")
                if content:
                    length += len(content)
                    yield content
                if choice.get("finish_reason") is not None:
                    finish, seen_finish = choice["finish_reason"], True
                    if finish == "content_filter":
                        self._finish(finish, length)
        if seen_finish:  # some servers end the stream without [DONE]
            return StreamEnd(self._finish(finish, length), prompt_tokens, completion_tokens)
        raise BackendError("connection", f"{self.provider} closed the stream before it was complete")
