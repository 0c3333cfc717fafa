"""Benchmark of the identity-leak check (figures go to docs/reliability.md, "Identity leaks in answers").

Times ``reveals_identity`` on 1,000 distinct rendered answers of 2,000 characters against 20 campaign
model names. Every answer is new, so each call misses the verdict cache and pays for the whole check
(normalising and searching); a second pass over the same answers shows the cache's hits. Two
corpora, neither naming a model:

- prose: paragraphs of ordinary technical prose, a list and a highlighted code block, the way an
  answer looks;
- dense: the same layout with random words, among them "I am", "developed", "Google" and "Meta", so
  that nearly every answer holds a maker's name and a self-description's words (the slow path).

    .venv/bin/python bench/identity.py [--answers 1000] [--names 20] [--rounds 5]
    .venv/bin/python bench/identity.py --identity OTHER/arena/services/identity.py   # e.g. an older version
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena.rendering import render_markdown

SENTENCES = (
    "The function reads the file line by line and keeps a running total.",
    "A dictionary gives constant-time lookups on average, which matters for large inputs.",
    "Before you start, install the dependencies with pip and create a virtual environment.",
    "Sorting first makes the search logarithmic, at the cost of the initial sort.",
    "If the list is empty, the loop never runs and the result stays zero.",
    "Run the command with the verbose flag to see every step.",
    "The metadata block lists the author, the date and the licence.",
    "Google Sheets and Excel can both open the exported CSV file.",
    "Water boils at a lower temperature at high altitude because the pressure is lower.",
    "The French Revolution began in 1789 with the storming of the Bastille.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "A good cover letter is short, specific and addressed to a person.",
    "The graphics card does most of the work when training a neural network.",
    "Regular expressions are powerful, but a parser is clearer for nested structures.",
    "Each request carries a token, and the server checks it before doing anything else.",
    "In summary, the second approach is simpler and just as fast.",
    "The recipe needs two eggs, a cup of flour and a pinch of salt.",
    "Compound interest grows the balance faster than simple interest over long periods.",
    "Keep the tests small, fast and independent of each other.",
    "The philosophy of the project is to prefer boring, well-understood tools.",
)
_WORDS = (
    "the a of to and in is it that for on with as this be are by from or an at which was can not but all "
    "data value list function result answer question example number time first way each use between "
    "because however therefore simple small large important common usually often another other given "
    "return string python loop table order change system people water river mountain city history "
    "light energy process method reason model layer weight train wind wool i am my developed meta google"
)
WORDS = _WORDS.split()

CODE = """```python
def {name}(items):
    total = 0
    for item in items:
        total += item * {k}
    return total
```"""


def _prose(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(SENTENCES) for _ in range(n))


def _soup(rng: random.Random, n: int) -> str:
    return " ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18))).capitalize() + "." for _ in range(n))


def answer(rng: random.Random, i: int, corpus: str, size: int = 2000) -> str:
    text = _prose if corpus == "prose" else _soup
    parts = [f"Answer {i}: " + text(rng, 3)]
    parts.append("\n".join(f"- **Step {j}**: {text(rng, 1)}" for j in range(1, 4)))
    parts.append(CODE.format(name=f"f{i}", k=rng.randint(2, 99)))
    while sum(map(len, parts)) < size:
        parts.append(text(rng, 3))
    return render_markdown("\n\n".join(parts))[:size]


def load(path: str | None):
    if path is None:
        from arena.core import identity

        return identity
    spec = importlib.util.spec_from_file_location("identity_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(identity, texts: list[str], names: list[str], rounds: int) -> tuple[list[float], list[float], int]:
    flagged = sum(identity.reveals_identity([t], names) for t in texts)
    misses, hits = [], []
    for r in range(rounds):
        batch = [f"<!-- {r} -->{t}" for t in texts]  # new texts each round: the cache keys on the text
        start = time.perf_counter()
        for text in batch:
            identity.reveals_identity([text], names)
        misses.append((time.perf_counter() - start) / len(batch) * 1e6)
        start = time.perf_counter()
        for text in batch:
            identity.reveals_identity([text], names)
        hits.append((time.perf_counter() - start) / len(batch) * 1e6)
    return misses, hits, flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--names", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--identity", help="the identity.py to time (default: this checkout's)")
    args = parser.parse_args()
    identity = load(args.identity)
    rng = random.Random(7)
    names = [f"Contender-{i:02d}-{rng.choice(['Chat', 'Pro', 'Mini'])}" for i in range(args.names)]
    print(f"{args.answers} distinct answers of 2,000 characters each, {args.names} campaign names, {identity.__file__}")
    for corpus in ("prose", "dense"):
        texts = [answer(rng, i, corpus) for i in range(args.answers)]
        misses, hits, flagged = measure(identity, texts, names, args.rounds)
        rounds = ", ".join(f"{m:.0f}" for m in misses)
        print(
            f"{corpus:5}: uncached median {statistics.median(misses):.0f} us/answer (rounds {rounds}); "
            f"cached {statistics.median(hits):.1f} us; flagged {flagged} of {len(texts)}"
        )


if __name__ == "__main__":
    main()
