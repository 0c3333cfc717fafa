"""Benchmark of the moderation step that every live prompt passes (issue 14: target under 5 ms per live
battle with the built-in rules moderator). Figures go to docs/reliability.md, "Moderation of live prompts".

Times ``arena.services.guardrails.moderation.moderate`` (the step as the live battle calls it: the process's
moderator looked up for the campaign's settings, then its check) on distinct prompts that pass, so no
refusal is written; refused prompts add one INSERT. Three configurations in the same run:

- none: the ``none`` moderator (the step's own overhead: what a campaign without moderation pays);
- rules (defaults): the built-in moderator as a new campaign has it (the identity-probe patterns);
- rules (staff lists): the same plus ``--words`` words and ``--patterns`` regular expressions.

Each on short prompts (a sentence) and long ones (ARENA_MAX_PROMPT_CHARS, 4,000 characters).

    .venv/bin/python bench/moderation.py [--prompts 1000] [--words 200] [--patterns 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from arena.models import Campaign  # noqa: E402
from arena.services.guardrails import moderation  # noqa: E402

WORDS = [
    "river",
    "table",
    "green",
    "quickly",
    "market",
    "engine",
    "window",
    "garden",
    "theory",
    "letter",
    "python",
    "recipe",
    "history",
    "music",
    "planet",
]


def prompts(n: int, chars: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = []
        while sum(len(w) + 1 for w in words) < chars:
            words.append(rng.choice(WORDS))
        out.append(("Please explain " + " ".join(words))[:chars] + "?")
    return out


def staff_lists(words: int, patterns: int) -> dict:
    rng = random.Random(7)
    listed = ["".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(8)) for _ in range(words)]
    regexes = [rf"\b{w}\s+(?:now|today)\b" for w in listed[:patterns]]
    return {"words": listed, "patterns": regexes}


def run(campaign: Campaign, texts: list[str], rounds: int) -> tuple[float, float, float]:
    """Median and 99th percentile of one call's wall time, and the mean CPU time of one call (what the
    machine's other load does not inflate), in milliseconds, over ``rounds`` passes."""
    timings = []
    cpu = time.process_time()
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            moderation.moderate(campaign, None, text)
            timings.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu) * 1000 / len(timings)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1], cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--patterns", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    configurations = {
        "none": Campaign(pk=1, moderator="none"),
        "rules (defaults)": Campaign(pk=2, moderator="rules"),
        f"rules (+{args.words} words, {args.patterns} patterns)": Campaign(
            pk=3, moderator="rules", moderator_settings=staff_lists(args.words, args.patterns)
        ),
    }
    corpora = {"short (~80 chars)": prompts(args.prompts, 80, 1), "long (4,000 chars)": prompts(args.prompts, 4000, 2)}
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"moderate(): {args.prompts} distinct passing prompts x {args.rounds} rounds")
    print("ms per call: median wall / p99 wall / mean CPU")
    for name, campaign in configurations.items():
        cells = [
            f"{label}: {m:.3f} / {p99:.3f} / {c:.3f}"
            for label, (m, p99, c) in ((label, run(campaign, texts, args.rounds)) for label, texts in corpora.items())
        ]
        print(f"  {name:<32} " + "   ".join(cells))


if __name__ == "__main__":
    main()
