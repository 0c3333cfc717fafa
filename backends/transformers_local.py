"""Local Hugging Face ``transformers`` causal language models (GPU or CPU).

Settings:

- ``model_path`` (required): a local directory or a hub id (downloaded by transformers when online).
- ``dtype``: ``"auto"`` (default: the checkpoint's dtype), ``"bf16"``, ``"fp16"`` or ``"fp32"``.
- ``device``: ``"cuda"`` / ``"cuda:N"`` / ``"cpu"`` / ``"mps"``, or ``"auto"`` to spread the model over
  the available devices with accelerate (``device_map="auto"``). Default: ``cuda`` when available, else
  ``cpu``.
- ``quantization``: ``"8bit"`` or ``"4bit"`` (bitsandbytes; an error says so when it is not installed).
- ``trust_remote_code`` (default false), ``revision``, ``local_files_only`` (default false).
- ``chat_template``: a Jinja template that replaces the tokenizer's own.
- ``max_batch_size`` (default 8) and ``batch_wait_ms`` (default 10): see batching below.
- ``token_timeout``: seconds a stream waits for the next piece of text before failing (default 300).

Torch and transformers are imported on first use, so this module imports without them.

Prompting: the tokenizer's chat template with the generation prompt. A tokenizer without one gets a
plain fallback, ``"System: ...\\n\\nUser: ...\\n\\nAssistant: ...\\n\\nAssistant:"``, and ``"\\n\\nUser:"``
is added to the stop strings so a base model does not write the next user turn.

Models are loaded once per process and shared by all backend instances with the same load settings
(path, dtype, device, quantization, trust_remote_code, revision); :func:`unload_all` frees them. One
generation runs at a time per loaded model (a lock), which keeps memory predictable.

Batching: ``generate`` calls for the same model are queued; the oldest waits up to its backend's
``batch_wait_ms`` for others with the same decoding parameters and they run as one left-padded
``generate`` call of at most its ``max_batch_size`` rows. ``stop`` and ``max_new_tokens`` may differ
between rows: each row stops at its own limit and is padded while the others go on, so greedy rows give
the text they give alone (``generate_many`` takes one parameter set per conversation; pre-generation
uses it, see arena/services/gpu_batches.py). Sampled requests with a seed always run alone so the seed
reproduces the text; beam search batches identical requests only. ``stream`` runs each
request on its own (``TextIteratorStreamer`` in a background thread); with ``num_beams > 1`` it yields
the whole text as one delta, since beam search cannot stream.

Decoding parameters: all but presence/frequency penalties. ``None`` fields use the model's
``generation_config`` (e.g. transformers' default ``top_k=50`` when sampling). A seed is applied with
``torch.manual_seed`` inside ``torch.random.fork_rng``, so it neither depends on nor disturbs the
global random state.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import importlib.util
import os
import queue
import re
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from backends.base import (
    COMMON_PARAMS,
    Backend,
    GenerationResult,
    Message,
    SettingsReader,
    ShownText,
    truncate_at_stop,
)
from backends.errors import BackendError, InvalidRequest
from backends.params import DecodingParams

if TYPE_CHECKING:
    import torch

FALLBACK_STOP = "\n\nUser:"
_DTYPES = ("auto", "bf16", "fp16", "fp32")


@dataclasses.dataclass(frozen=True)
class LoadSettings:
    """What identifies a loaded model in the process-wide cache."""

    model_path: str
    dtype: str
    device: str
    quantization: str | None
    trust_remote_code: bool
    revision: str | None
    local_files_only: bool


class TransformersBackend(Backend):
    """A causal LM from ``transformers``, loaded lazily and shared within the process."""

    kind = "transformers"
    supported_params = COMMON_PARAMS | {
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "repetition_penalty",
        "seed",
        "num_beams",
    }

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        r = SettingsReader(settings, self.kind)
        model_path = r.str("model_path", required=True)
        device = r.str("device", None)
        if device is not None and not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
            raise InvalidRequest("settings.device", f"must be auto, cpu, mps, cuda or cuda:N; got {device!r}")
        quantization = r.choice("quantization", (None, "8bit", "4bit"), None)
        if quantization is not None and importlib.util.find_spec("bitsandbytes") is None:
            raise InvalidRequest(
                "settings.quantization",
                f"{quantization} quantization needs the bitsandbytes package (and a CUDA GPU); "
                "install it or remove the setting",
            )
        self._load_args = {
            "model_path": model_path,
            "dtype": r.choice("dtype", _DTYPES, "auto"),
            "device": device,
            "quantization": quantization,
            "trust_remote_code": r.bool("trust_remote_code", False),
            "revision": r.str("revision", None),
            "local_files_only": r.bool("local_files_only", False),
        }
        self.chat_template: str | None = r.str("chat_template", None)
        self.max_batch_size: int = r.int("max_batch_size", 8, low=1, high=1024)
        self.batch_wait_s: float = r.number("batch_wait_ms", 10.0, low=0.0, high=10_000.0) / 1000.0
        self.token_timeout: float = r.number("token_timeout", 300.0, low=0.001)
        r.finish()

    def __repr__(self) -> str:
        return f"<TransformersBackend model_path={self._load_args['model_path']!r}>"

    # -- loading --------------------------------------------------------------------------------------

    def load_settings(self) -> LoadSettings:
        """The cache key, with the default device resolved (needs torch)."""
        args = dict(self._load_args)
        if args["device"] is None:
            torch = _import_torch()
            args["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        return LoadSettings(**args)

    def loaded(self) -> LoadedModel:
        """The shared loaded model (loads it on first use)."""
        return load_model(self.load_settings())

    def batch_history(self) -> list[int]:
        """Sizes of the recent batched ``generate`` calls for this model (newest last)."""
        return list(self.loaded().batcher.history)

    # -- generation -----------------------------------------------------------------------------------

    def _prepare(self, lm: LoadedModel, messages: list[Message], params: DecodingParams) -> _Request:
        prompt, add_special, extra_stop = lm.render(messages, self.chat_template)
        ids = lm.tokenizer(prompt, add_special_tokens=add_special)["input_ids"]
        prompt_len = len(ids)
        max_new = params.max_new_tokens
        if lm.max_positions is not None:
            if prompt_len >= lm.max_positions:
                raise InvalidRequest(
                    "messages", f"the prompt is {prompt_len} tokens; the model's context is {lm.max_positions}"
                )
            max_new = min(max_new, lm.max_positions - prompt_len)
        stop = tuple(dict.fromkeys(params.stop + extra_stop))
        return _Request(prompt, add_special, prompt_len, max_new, stop, params, self.max_batch_size, self.batch_wait_s)

    def _generate(self, messages: list[Message], params: DecodingParams) -> GenerationResult:
        return self.generate_many([messages], params)[0]

    def generate_many(
        self,
        conversations: list[list[Message]] | list[list[dict[str, Any]]],
        params: DecodingParams | Mapping[str, Any] | list[DecodingParams | Mapping[str, Any] | None] | None = None,
    ) -> list[GenerationResult]:
        """Generate replies to several conversations, batched together. ``params`` is one set for all or
        a list with one per conversation: greedy and unseeded sampled requests that differ only in
        ``stop`` and ``max_new_tokens`` share a batch (each row stops at its own limit)."""
        start = time.monotonic()
        each = params if isinstance(params, list) else [params] * len(conversations)
        if len(each) != len(conversations):
            raise InvalidRequest("params", f"{len(each)} parameter sets for {len(conversations)} conversations")
        prepared = [self.prepare(c, p) for c, p in zip(conversations, each, strict=True)]
        lm = self.loaded()
        requests = [self._prepare(lm, msgs, p) for msgs, p in prepared]
        futures = lm.batcher.submit_many(requests)
        results = []
        for future in futures:
            text, finish, completion_tokens, prompt_tokens = future.result()
            results.append(
                GenerationResult(
                    text=text,
                    finish_reason=finish,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    latency_s=time.monotonic() - start,
                    ttft_s=None,
                    model=lm.settings.model_path,
                )
            )
        return results

    def _stream(self, messages: list[Message], params: DecodingParams) -> Generator[str, None, GenerationResult]:
        start = time.monotonic()
        lm = self.loaded()
        req = self._prepare(lm, messages, params)
        if params.num_beams > 1:  # beam search cannot stream: one delta with the whole text
            text, finish, completion_tokens, prompt_tokens = lm.batcher.submit(req).result()
            ttft = time.monotonic() - start
            if text:
                yield text
            return GenerationResult(
                text, finish, prompt_tokens, completion_tokens, time.monotonic() - start, ttft, lm.settings.model_path
            )
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(
            lm.tokenizer,
            skip_prompt=True,
            timeout=self.token_timeout,
            skip_special_tokens=True,
            clean_up_tokenization_spaces=False,
        )
        cancel = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["output"] = lm.run_generate([req], streamer=streamer, cancel=cancel)
            except BaseException as exc:
                box["error"] = exc
                streamer.end()

        thread = threading.Thread(target=run, name="arena-transformers-stream", daemon=True)
        thread.start()
        shown = ShownText(start, req.stop)

        def pieces() -> Iterator[str]:
            while True:
                try:
                    yield next(streamer)
                except StopIteration:
                    return
                except queue.Empty:
                    raise BackendError(
                        "timeout", f"the local model produced no text for {self.token_timeout:g}s"
                    ) from None

        try:
            yield from shown.through(pieces())
        finally:
            cancel.set()
            thread.join()
        if "error" in box:
            raise _as_backend_error(box["error"])
        _, finish, completion_tokens, prompt_tokens = box["output"][0]
        return GenerationResult(
            text=shown.text,
            finish_reason="stop" if shown.stopped else finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=time.monotonic() - start,
            ttft_s=shown.ttft,
            model=lm.settings.model_path,
        )


@dataclasses.dataclass(eq=False)
class _Request:
    prompt: str
    add_special_tokens: bool
    prompt_tokens: int
    max_new_tokens: int
    stop: tuple[str, ...]
    params: DecodingParams
    max_batch_size: int = 8
    batch_wait_s: float = 0.01

    def batch_key(self) -> object:
        """Requests with equal keys may share one ``generate`` call: the same decoding parameters but for
        ``stop`` and ``max_new_tokens``, which each row applies for itself (`_RowLimits`)."""
        if self.params.do_sample and self.params.seed is not None:
            return id(self)  # a seeded sample must run alone to be reproducible
        if self.params.num_beams > 1:  # beams share their limits: only identical requests batch
            return (self.params, self.max_new_tokens, self.stop, self.add_special_tokens)
        return (self.params.replace(stop=(), max_new_tokens=1), self.add_special_tokens)


# (text, finish_reason, completion_tokens, prompt_tokens)
_Output = tuple[str, str, int, int]


class LoadedModel:
    """A model and tokenizer in memory, with the lock and batcher that serve them."""

    def __init__(self, settings: LoadSettings, model: Any, tokenizer: Any) -> None:
        self.settings = settings
        self.model = model
        self.tokenizer = tokenizer
        self.lock = threading.Lock()
        self.batcher = _Batcher(self)
        config = model.config
        self.max_positions: int | None = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids: set[int] = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self.pad_id: int = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids, default=0)
        )

    def render(self, messages: list[Message], template: str | None) -> tuple[str, bool, tuple[str, ...]]:
        """(prompt text, whether the tokenizer should add special tokens, extra stop strings)."""
        template = template or getattr(self.tokenizer, "chat_template", None)
        if template:
            prompt = self.tokenizer.apply_chat_template(
                [dict(m) for m in messages], chat_template=template, tokenize=False, add_generation_prompt=True
            )
            return prompt, False, ()
        names = {"system": "System", "user": "User", "assistant": "Assistant"}
        prompt = "".join(f"{names[m['role']]}: {m['content']}\n\n" for m in messages) + "Assistant:"
        return prompt, True, (FALLBACK_STOP,)

    def run_generate(
        self, batch: list[_Request], *, streamer: Any = None, cancel: threading.Event | None = None
    ) -> list[_Output]:
        """One ``generate`` call for requests with the same decoding parameters (under the model lock)."""
        torch = _import_torch()
        from transformers import StoppingCriteriaList

        first = batch[0]
        p = first.params
        # Left-pad by hand: asking the tokenizer to pad mutates it, and it is shared across threads
        # (a fast tokenizer then fails with "Already borrowed").
        rows = [self.tokenizer(r.prompt, add_special_tokens=first.add_special_tokens)["input_ids"] for r in batch]
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention[i, width - len(row) :] = 1
        device = self.model.device
        enc = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device)}
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = max(r.max_new_tokens for r in batch)
        config.max_length = None
        config.do_sample = p.do_sample
        config.num_beams = p.num_beams
        config.pad_token_id = self.pad_id
        config.eos_token_id = sorted(self.eos_ids) or None
        beams = p.num_beams > 1  # beam search keeps transformers' own stop strings (identical rows only)
        config.stop_strings = (list(first.stop) or None) if beams else None
        if p.do_sample:
            for name in ("temperature", "top_p", "top_k"):
                if getattr(p, name) is not None:
                    setattr(config, name, getattr(p, name))
        else:  # neutral values, so a checkpoint's sampling defaults do not trigger warnings
            config.temperature, config.top_p, config.top_k = 1.0, 1.0, None
        if p.repetition_penalty is not None:
            config.repetition_penalty = p.repetition_penalty
        criteria = StoppingCriteriaList([] if beams else [_RowLimits(batch, width, self.tokenizer)])
        if cancel is not None:
            criteria.append(_cancel_criterion(cancel))
        devices = list(range(torch.cuda.device_count())) if str(device).startswith("cuda") else []
        with self.lock, torch.inference_mode():
            if cancel is not None and cancel.is_set():
                if streamer is not None:
                    streamer.end()
                return [("", "stop", 0, r.prompt_tokens) for r in batch]
            with torch.random.fork_rng(devices=devices, enabled=p.seed is not None):
                if p.seed is not None:
                    torch.manual_seed(p.seed)
                output = self.model.generate(
                    **enc,
                    generation_config=config,
                    tokenizer=self.tokenizer,
                    streamer=streamer,
                    stopping_criteria=criteria or None,
                )
        prompt_width = enc["input_ids"].shape[1]
        return [self._decode(row[prompt_width:].tolist(), req) for row, req in zip(output, batch, strict=True)]

    def _decode(self, tokens: list[int], req: _Request) -> _Output:
        n, hit_eos = 0, False
        for token in tokens[: req.max_new_tokens]:
            if token in self.eos_ids:
                n, hit_eos = n + 1, True
                break
            if token == self.pad_id:
                break
            n += 1
        text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True, clean_up_tokenization_spaces=False)
        text, hit_stop = truncate_at_stop(text, req.stop)
        finish = "stop" if hit_eos or hit_stop or n < req.max_new_tokens else "length"
        return text, finish, n, req.prompt_tokens


class _RowLimits:
    """Stopping criterion of a batch whose rows have their own ``max_new_tokens`` and stop strings: a row
    is done once it has its tokens or its text holds one of its stop strings (transformers then pads it
    while the others go on). Only the last tokens are decoded, enough to hold the longest stop string."""

    def __init__(self, batch: list[_Request], prompt_width: int, tokenizer: Any) -> None:
        self.batch, self.prompt_width, self.tokenizer = batch, prompt_width, tokenizer
        self.windows = [max((len(s) for s in r.stop), default=0) + 8 for r in batch]
        self.done = [False] * len(batch)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        torch = _import_torch()
        length = input_ids.shape[1]
        generated = length - self.prompt_width
        for i, req in enumerate(self.batch):
            if self.done[i]:
                continue
            if generated >= req.max_new_tokens:
                self.done[i] = True
            elif req.stop:
                tail = input_ids[i, max(self.prompt_width, length - self.windows[i]) :].tolist()
                text = self.tokenizer.decode(tail, skip_special_tokens=True, clean_up_tokenization_spaces=False)
                self.done[i] = any(stop in text for stop in req.stop)
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


def _cancel_criterion(event: threading.Event) -> Any:
    """A stopping criterion that ends every row once ``event`` is set (the stream was closed)."""
    torch = _import_torch()
    from transformers import StoppingCriteria

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return Cancelled()


class _Batcher:
    """Collects concurrent non-streaming requests for one model into batched ``generate`` calls."""

    def __init__(self, lm: LoadedModel) -> None:
        self.lm = lm
        self.history: collections.deque[int] = collections.deque(maxlen=1000)
        self._pending: list[tuple[_Request, Future[_Output], float]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, req: _Request) -> Future[_Output]:
        return self.submit_many([req])[0]

    def submit_many(self, reqs: list[_Request]) -> list[Future[_Output]]:
        """Queue requests together: the batcher sees all of them at once, so the requests of one
        ``generate_many`` share batches whatever the scheduler does between them (one by one, a
        submitter paused past ``batch_wait_ms`` would cut its own batch)."""
        futures: list[Future[_Output]] = [Future() for _ in reqs]
        with self._cond:
            now = time.monotonic()
            self._pending.extend((req, future, now) for req, future in zip(reqs, futures, strict=True))
            if self._thread is None or not self._thread.is_alive():  # also restarts after a fork
                self._thread = threading.Thread(target=self._loop, name="arena-transformers-batcher", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return futures

    def _take_batch(self) -> list[tuple[_Request, Future[_Output], float]]:
        with self._cond:
            while not self._pending:
                self._cond.wait()
            oldest, _, arrived = self._pending[0]
            key, size = oldest.batch_key(), oldest.max_batch_size
            until = arrived + oldest.batch_wait_s
            while True:
                same = [item for item in self._pending if item[0].batch_key() == key]
                remaining = until - time.monotonic()
                if len(same) >= size or remaining <= 0:
                    break
                self._cond.wait(timeout=remaining)
            batch = same[:size]
            taken = {id(item) for item in batch}
            self._pending = [item for item in self._pending if id(item) not in taken]
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            self.history.append(len(batch))
            try:
                outputs = self.lm.run_generate([req for req, _, _ in batch])
            except BaseException as exc:
                error = _as_backend_error(exc)
                for _, future, _ in batch:
                    future.set_exception(error)
            else:
                for (_, future, _), out in zip(batch, outputs, strict=True):
                    future.set_result(out)


# -- process-wide model cache ------------------------------------------------------------------------

_cache: dict[LoadSettings, LoadedModel] = {}
_cache_lock = threading.Lock()
_load_locks: dict[LoadSettings, threading.Lock] = {}


def load_model(settings: LoadSettings) -> LoadedModel:
    """The loaded model for ``settings``, loading it once per process (other models load in parallel)."""
    with _cache_lock:
        if settings in _cache:
            return _cache[settings]
        lock = _load_locks.setdefault(settings, threading.Lock())
    with lock:
        with _cache_lock:
            if settings in _cache:
                return _cache[settings]
        model, tokenizer = _load(settings)
        lm = LoadedModel(settings, model, tokenizer)
        with _cache_lock:
            _cache[settings] = lm
        return lm


def loaded_models() -> list[LoadSettings]:
    """Load settings of the models in memory."""
    with _cache_lock:
        return list(_cache)


def unload_all() -> None:
    """Forget every loaded model (memory is freed once running generations finish)."""
    with _cache_lock:
        _cache.clear()
    torch = _import_torch()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise BackendError(
            "bad_request",
            "the transformers backend needs torch and transformers (pip install 'arena[gpu]')",
            retryable=False,
        ) from None
    return torch


def _load(s: LoadSettings) -> tuple[Any, Any]:
    torch = _import_torch()
    try:
        import transformers
    except ImportError:
        raise BackendError(
            "bad_request", "the transformers backend needs the transformers package", retryable=False
        ) from None
    common: dict[str, Any] = {"trust_remote_code": s.trust_remote_code, "local_files_only": s.local_files_only}
    if s.revision:
        common["revision"] = s.revision
    dtype = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[s.dtype]
    major = int(transformers.__version__.split(".")[0])
    minor = int(transformers.__version__.split(".")[1])
    model_kwargs: dict[str, Any] = {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}
    if s.quantization is not None:
        compute = torch.bfloat16 if dtype == "auto" else dtype
        model_kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_8bit=s.quantization == "8bit",
            load_in_4bit=s.quantization == "4bit",
            bnb_4bit_compute_dtype=compute,
        )
    if s.device == "auto":
        model_kwargs["device_map"] = "auto"
    elif s.device != "cpu" or s.quantization is not None:
        model_kwargs["device_map"] = {"": s.device}
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(s.model_path, **common)
        model = transformers.AutoModelForCausalLM.from_pretrained(s.model_path, **common, **model_kwargs)
    except (OSError, ValueError) as exc:
        where = "directory" if os.path.isdir(s.model_path) else "path or hub id"
        raise BackendError(
            "bad_request", f"could not load the model from {where} {s.model_path!r}: {exc}", retryable=False
        ) from None
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    return model, tokenizer


def _as_backend_error(exc: BaseException) -> BackendError:
    if isinstance(exc, BackendError):
        return exc
    if type(exc).__name__ == "OutOfMemoryError":
        return BackendError("server_error", f"the local model ran out of memory: {exc}", retryable=True)
    return BackendError("server_error", f"local generation failed: {type(exc).__name__}: {exc}", retryable=False)
