"""A backend that returns pre-written text: demos, fixtures, and failure drills without a model.

Settings:

- ``text``: the answer (default ``"You said: {prompt}"``); ``{prompt}`` is replaced by the last user
  message (plain replacement, other braces are left alone).
- ``responses``: an object mapping an exact last user message to its answer; others get ``text``.
- ``chunk_delay``: seconds to sleep between streamed chunks (default 0), to show streaming in a demo.
- ``error``: an error kind (e.g. ``"rate_limit"``) to raise instead of answering, with
  ``error_message``; for rehearsing failure handling end to end.

The answer is split into word chunks ("word + following spaces"), each counted as one token, so
``max_new_tokens`` truncates at a word (finish_reason ``"length"``) and ``stop`` strings cut the text
as with a real model. Every decoding parameter is accepted and the output is always deterministic.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Generator, Iterator, Mapping
from typing import Any

from backends.base import Backend, GenerationResult, Message, SettingsReader, ShownText, last_user_text
from backends.errors import ERROR_KINDS, BackendError, InvalidRequest
from backends.params import DecodingParams

_CHUNK = re.compile(r"\s*\S+\s*|\s+")


class StaticBackend(Backend):
    """Scripted answers, streamed word by word."""

    kind = "static"
    supported_params = frozenset(f.name for f in dataclasses.fields(DecodingParams))

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        reader = SettingsReader(settings, self.kind)
        text = reader.raw("text")
        if text is not None and not isinstance(text, str):
            raise InvalidRequest("settings.text", f"must be a string, got {type(text).__name__}")
        self.text: str = "You said: {prompt}" if text is None else text
        self.responses = reader.str_dict("responses")
        self.chunk_delay: float = reader.number("chunk_delay", 0.0, low=0.0, high=60.0)
        self.error_kind: str | None = reader.choice("error", (None, *sorted(ERROR_KINDS)), None)
        self.error_message: str = reader.str("error_message", "scripted failure")
        reader.finish()

    def _answer(self, messages: list[Message]) -> str:
        if self.error_kind is not None:
            raise BackendError(self.error_kind, self.error_message)  # type: ignore[arg-type]
        prompt = last_user_text(messages)
        return self.responses.get(prompt, self.text).replace("{prompt}", prompt)

    def _stream(self, messages: list[Message], params: DecodingParams) -> Generator[str, None, GenerationResult]:
        start = time.monotonic()
        answer = self._answer(messages)
        chunks = _CHUNK.findall(answer)
        finish = "stop"
        if len(chunks) > params.max_new_tokens:
            chunks, finish = chunks[: params.max_new_tokens], "length"
        shown = ShownText(start, params.stop)
        used = 0

        def paced() -> Iterator[str]:
            nonlocal used
            for chunk in chunks:
                if shown.parts and self.chunk_delay:
                    time.sleep(self.chunk_delay)
                used += 1
                yield chunk

        yield from shown.through(paced())
        if shown.stopped:
            finish = "stop"
        prompt_tokens = sum(len(_CHUNK.findall(m["content"])) for m in messages)
        return GenerationResult(
            text=shown.text,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=used,
            latency_s=time.monotonic() - start,
            ttft_s=shown.ttft,
            model="static",
        )

    def _generate(self, messages: list[Message], params: DecodingParams) -> GenerationResult:
        stream = self._stream(messages, params)
        try:
            while True:
                next(stream)
        except StopIteration as stop:
            result: GenerationResult = stop.value
        return dataclasses.replace(result, ttft_s=None)
