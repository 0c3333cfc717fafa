"""Benchmark of batched pre-generation: tokens/s of the transformers backend one response at a time vs in batches.

    .venv/bin/python bench/pregeneration.py                  # the tiny test model on CPU, 64 prompts
    .venv/bin/python bench/pregeneration.py --model PATH --device cuda --dtype bf16 --prompts 256

Three ways to answer the same prompts with greedy decoding, in the same run:

- "old": what pre-generation did before (arena.services.generation streamed each response on its own);
- "batch 1": ``generate_many`` with ``max_batch_size`` 1;
- "batch 8": ``generate_many`` with ``max_batch_size`` 8, as a GPU task now does (arena/services/gpu_batches.py).

The texts of the three must be equal (checked). tokens/s counts completion tokens. Default model: the
tiny chat GPT-2 of the tests (tests/tiny_chat_model.py), trained once into var/bench-pregeneration/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "What is two plus two?",
    "Hello there, how are you?",
    "Name a fast animal.",
    "What does Arena do?",
    "Tell me about Arena please, in detail.",
    "What is two plus two plus two?",
    "Name two fast animals.",
    "Is Arena fast?",
]


def tiny_model() -> Path:
    from tests.tiny_chat_model import build

    directory = ROOT / "var" / "bench-pregeneration" / "tiny-chat-gpt2"
    if not (directory / "config.json").exists():
        directory.mkdir(parents=True, exist_ok=True)
        build(directory)
    return directory


def run(backend, conversations, params, mode: str) -> tuple[float, int, list[str]]:
    start = time.perf_counter()
    if mode == "old":
        results = [backend.stream(c, params).finish() for c in conversations]
    else:
        results = backend.generate_many(conversations, params)
    elapsed = time.perf_counter() - start
    return elapsed, sum(r.completion_tokens for r in results), [r.text for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a transformers model directory or hub id (default: the tiny test model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady on a busy machine)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode; the best is shown")
    args = parser.parse_args()

    import torch

    from backends import get_backend

    torch.set_num_threads(args.threads)
    path = args.model or str(tiny_model())
    conversations = [
        [{"role": "user", "content": f"{QUESTIONS[i % len(QUESTIONS)]}{' Please.' * (i // len(QUESTIONS) % 3)}"}]
        for i in range(args.prompts)
    ]
    params = {"do_sample": False, "max_new_tokens": args.max_new_tokens}
    common = {"model_path": path, "device": args.device, "dtype": args.dtype, "batch_wait_ms": 0}
    backends = {
        "old": get_backend("transformers", {**common, "max_batch_size": 1}),
        "batch 1": get_backend("transformers", {**common, "max_batch_size": 1}),
        "batch 8": get_backend("transformers", {**common, "max_batch_size": 8}),
    }
    backends["old"].generate(conversations[0], params)  # load and warm up
    print(f"model {path}, device {args.device}, dtype {args.dtype}, torch threads {torch.get_num_threads()}")
    print(f"{args.prompts} prompts, greedy, max_new_tokens {args.max_new_tokens}; best of {args.repeat}\n")
    figures: dict[str, float] = {}
    texts: dict[str, list[str]] = {}
    for mode, backend in backends.items():
        best = None
        for _ in range(args.repeat):
            elapsed, tokens, texts[mode] = run(backend, conversations, params, mode)
            best = elapsed if best is None else min(best, elapsed)
        figures[mode] = tokens / best
        print(f"{mode:<8} {best:7.2f} s  {tokens:6d} tokens  {figures[mode]:8.1f} tokens/s", flush=True)
    same = texts["old"] == texts["batch 1"] == texts["batch 8"]
    print(
        f"\nbatch 8 / batch 1: {figures['batch 8'] / figures['batch 1']:.1f}x; "
        f"batch 8 / old: {figures['batch 8'] / figures['old']:.1f}x; same texts: {same}"
    )
    if not same:
        raise SystemExit("the batched texts differ from one at a time")


if __name__ == "__main__":
    main()
