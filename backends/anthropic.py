"""Anthropic Messages API (``POST /v1/messages``), streamed or whole.

Settings (besides the HTTP ones in :mod:`backends.http_client`):

- ``base_url``: default ``https://api.anthropic.com``; ``/v1/messages`` is appended (a base URL that
  already ends in ``/v1`` gets ``/messages``).
- ``model`` (required); ``api_key_env`` (default ``ANTHROPIC_API_KEY``, sent as ``x-api-key``);
  ``anthropic_version`` (default ``2023-06-01``, sent as ``anthropic-version``).

System messages are joined (blank line between) into the top-level ``system`` field; the other turns
go in ``messages`` unchanged. Supported parameters: max_new_tokens, do_sample (greedy is sent as
``temperature: 0``), temperature (at most 1), top_p, top_k, stop (``stop_sequences``). A
``stop_reason`` of ``"refusal"`` raises ``content_filtered`` (see :mod:`backends.openai_compat`).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, NoReturn

from httpx_sse import ServerSentEvent

from backends.base import COMMON_PARAMS, Message, SettingsReader
from backends.errors import BackendError, ErrorKind, InvalidRequest
from backends.http_client import HttpBackend, ParsedResponse, StreamEnd, as_int, invalid, parse_json_event
from backends.params import DecodingParams

# Error ``type`` values of the Messages API, in error bodies and in ``error`` stream events.
_ERROR_KINDS: dict[str, ErrorKind] = {
    "authentication_error": "authentication",
    "permission_error": "authentication",
    "rate_limit_error": "rate_limit",
    "overloaded_error": "server_error",
    "api_error": "server_error",
    "timeout_error": "timeout",
    "invalid_request_error": "bad_request",
    "not_found_error": "bad_request",
    "request_too_large": "bad_request",
}


class AnthropicBackend(HttpBackend):
    """Claude models through the Messages API."""

    kind = "anthropic"
    provider = "Anthropic API"
    default_base_url = "https://api.anthropic.com"
    default_api_key_env = "ANTHROPIC_API_KEY"
    supported_params = COMMON_PARAMS | {"temperature", "top_p", "top_k", "stop"}
    finish_reasons = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
    filtered_reason = "refusal"
    filtered_text = "refused to continue"

    def _read_provider_settings(self, reader: SettingsReader) -> None:
        self.anthropic_version: str = reader.str("anthropic_version", "2023-06-01")

    def check_params(self, params: DecodingParams) -> None:
        super().check_params(params)
        if params.temperature is not None and params.temperature > 1.0:
            raise InvalidRequest("temperature", f"must be at most 1 for the Anthropic API, got {params.temperature}")

    def _url(self) -> str:
        base = self.http.base_url
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": self.anthropic_version}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def _body(self, messages: list[Message], params: DecodingParams, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": self.http.model,
            "max_tokens": params.max_new_tokens,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"],
            "stream": stream,
        }
        if system:
            body["system"] = system
        body.update(self._sampling_fields(params, ("temperature", "top_p", "top_k"), "stop_sequences"))
        return body

    def _raise_error_event(self, error: object) -> NoReturn:
        if not isinstance(error, dict):
            raise invalid(self.provider, f"error event without details: {error!r}"[:300])
        etype = str(error.get("type", ""))
        kind = _ERROR_KINDS.get(etype, "server_error")
        message = str(error.get("message", ""))[:500]
        raise BackendError(kind, f"{self.provider} reported {etype or 'an error'}: {message}")

    def _parse_response(self, data: dict[str, Any]) -> ParsedResponse:
        if data.get("type") == "error":
            self._raise_error_event(data.get("error"))
        content = data.get("content")
        if not isinstance(content, list):
            raise invalid(self.provider, "no content list in the response")
        text = "".join(
            block["text"]
            for block in content
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return ParsedResponse(
            text=text,
            finish_reason=self._finish(data.get("stop_reason"), len(text)),
            prompt_tokens=as_int(usage.get("input_tokens")),
            completion_tokens=as_int(usage.get("output_tokens")),
        )

    def _parse_stream(self, events: Iterator[ServerSentEvent]) -> Generator[str, None, StreamEnd]:
        stop_reason: object = None
        prompt_tokens = completion_tokens = None
        length = 0
        for event in events:
            data = parse_json_event(event, self.provider)
            etype = data.get("type", event.event)
            if etype == "message_start":
                message = data.get("message") if isinstance(data.get("message"), dict) else {}
                usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
                prompt_tokens = as_int(usage.get("input_tokens"))
                completion_tokens = as_int(usage.get("output_tokens"))
            elif etype == "content_block_delta":
                delta = data.get("delta")
                if not isinstance(delta, dict):
                    raise invalid(self.provider, "content_block_delta without a delta object")
                if delta.get("type") == "text_delta":
                    text = delta.get("text")
                    if not isinstance(text, str):
                        raise invalid(self.provider, "text_delta without text")
                    if text:
                        length += len(text)
                        yield text
            elif etype == "message_delta":
                delta = data.get("delta") if isinstance(data.get("delta"), dict) else {}
                if delta.get("stop_reason") is not None:
                    stop_reason = delta["stop_reason"]
                    self._finish(stop_reason, length)  # raises on a refusal
                usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
                if as_int(usage.get("output_tokens")) is not None:
                    completion_tokens = as_int(usage.get("output_tokens"))
                if as_int(usage.get("input_tokens")) is not None:
                    prompt_tokens = as_int(usage.get("input_tokens"))
            elif etype == "message_stop":
                return StreamEnd(self._finish(stop_reason, length), prompt_tokens, completion_tokens)
            elif etype == "error":
                self._raise_error_event(data.get("error"))
            # ping, content_block_start/stop and future event types need nothing
        raise BackendError("connection", f"{self.provider} closed the stream before message_stop")
