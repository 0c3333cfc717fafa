"""Benchmark: importing 100,000 prompts with 2 answers each, old code against new, on PostgreSQL and SQLite.

Generates a file of N prompts (Arena JSONL by default, or CSV, TRL pairs or battle records) with R
pre-written answers each, and imports it with the management command `import_prompts`
(`arena.services.imports.import_file`) into a fresh database, each import in its own process so that
its peak RSS is its own. Then imports the same file again (idempotent: nothing is written). Each
figure is printed for the code of this tree ("new") and for the code of an older commit ("old",
``--old``, by default the commit before the Markdown fast path: it is extracted with ``git archive``
and run against the same schema), one after the other in the same run, on PostgreSQL and on SQLite.
Target: under 30 s and 300 MB peak RSS for 100,000 prompts x 2 answers.

Besides the wall time it prints the CPU time of the importing process and, on PostgreSQL, of the
backend serving it (read from /proc when the server runs on this host) and the load average: on a
shared machine the wall time mostly measures the other processes, the CPU times do not.

    .venv/bin/python bench/imports.py [--prompts 100000] [--responses 2] [--format jsonl]
        [--answer short|long] [--database postgres|sqlite|both] [--old REF | --old none]

"short" answers are one Markdown sentence with a bold number (as the earlier measurements; they take the
renderer's fast path, arena.rendering.simple_markdown_html); "long" ones are about 1,200 characters
with a list, a table and a code block (markdown-it renders them: 0.6 ms each instead of 6 us).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A child runs the code of the tree it is given (BENCH_CODE: this one, or an old commit's).
sys.path.insert(0, os.environ.get("BENCH_CODE", str(ROOT)))
OLD_REF = "c1db568"  # the commit before the Markdown fast path (issue 18; 0d7e720: before the streaming import)

from tests import stack  # noqa: E402

LONG_ANSWER = """Here is how to think about question {i}, step by step.

1. **Read the question** carefully: what is {i} squared?
2. Multiply the number by itself: `{i} * {i}`.
3. Check the result with a quick estimate.

| number | square |
| --- | --- |
| {i} | {square} |

```python
def square(n: int) -> int:
    return n * n

assert square({i}) == {square}
```

So the answer is **{square}**. Squares grow quickly: the square of twice a number is four times its
square, which is why a small error in the input becomes a large one in the output. See
[squares](https://en.wikipedia.org/wiki/Square_number) for more, and remember that *every* positive
integer has exactly one positive square root. ({model})
"""


def answer(i: int, model: str, kind: str) -> str:
    if kind == "long":
        return LONG_ANSWER.format(i=i, square=i * i, model=model)
    return f"The answer is **{i * i}** ({model})."


def write_file(path: Path, fmt: str, prompts: int, models: list[str], kind: str) -> None:
    """N prompts with one answer per model, in the given format."""
    with path.open("w", encoding="utf-8", newline="") as out:
        if fmt == "csv":
            writer = csv.writer(out)
            writer.writerow(["external_id", "prompt", "category", "language", "model", "response"])
        for i in range(prompts):
            question = f"Imported question {i}: what is {i} squared?"
            category = ("coding", "facts", "writing")[i % 3]
            answers = {m: answer(i, m, kind) for m in models}
            if fmt == "jsonl":
                record = {
                    "external_id": f"q{i}",
                    "prompt": question,
                    "category": category,
                    "language": "en",
                    "responses": answers,
                }
                out.write(json.dumps(record) + "\n")
            elif fmt == "csv":
                for model in models or [""]:
                    writer.writerow([f"q{i}", question, category, "en", model, answers.get(model, "")])
            elif fmt == "trl":
                chosen, rejected = models  # one record per prompt: two answers
                record = {
                    "prompt": [{"role": "user", "content": question}],
                    "chosen": [{"role": "assistant", "content": answers[chosen]}],
                    "rejected": [{"role": "assistant", "content": answers[rejected]}],
                    "question_id": f"q{i}",
                    "chosen_model": chosen,
                    "rejected_model": rejected,
                    "category": category,
                    "language": "en",
                }
                out.write(json.dumps(record) + "\n")
            else:  # battles
                a, b = models
                prompt = [{"role": "user", "content": question}]
                record = {
                    "question_id": f"q{i}",
                    "model_a": a,
                    "model_b": b,
                    "winner": "model_a",
                    "judge": "bench",
                    "turn": 1,
                    "anony": True,
                    "language": "en",
                    "tstamp": 1.7e9 + i,
                    "category": category,
                    "conversation_a": [*prompt, {"role": "assistant", "content": answers[a]}],
                    "conversation_b": [*prompt, {"role": "assistant", "content": answers[b]}],
                }
                out.write(json.dumps(record) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_cpu_seconds(pid: int | None) -> float | None:
    """CPU time of the PostgreSQL backend serving this process, when it runs on this host."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def child(slug: str, path: str, fmt: str) -> dict:
    """One import, exactly as `manage.py import_prompts SLUG FILE --format FMT` runs it."""
    import io

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    backend = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
    before, cpu, server = peak_rss_mb(), cpu_seconds(), backend_cpu_seconds(backend)
    out = io.StringIO()
    started = time.perf_counter()
    call_command("import_prompts", slug, path, format=fmt, stdout=out)
    seconds = time.perf_counter() - started
    server_after = backend_cpu_seconds(backend)
    return {
        "seconds": seconds,
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "cpu_seconds": cpu_seconds() - cpu,
        "server_cpu_seconds": None if server is None or server_after is None else server_after - server,
        "load": os.getloadavg()[0],
        "output": out.getvalue().strip(),
    }


def run_child(env: dict, code: Path, *args: str) -> dict:
    """An import in a process of its own, running the code of the tree at ``code``."""
    env = {**env, "BENCH_CODE": str(code), "PYTHONPATH": str(code)}
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], cwd=code, env=env, capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def setup_campaign(env: dict, slug: str, models: list[str]) -> None:
    models_spec = [{"name": m, "backend": "static"} for m in models]
    spec = {"slug": slug, "title": f"Import benchmark {slug}", "models": models_spec}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    stack.manage(env, "load_campaign", handle.name)
    Path(handle.name).unlink()


@contextmanager
def database(kind: str, tmp: Path, name: str) -> Iterator[dict]:
    """The environment of a fresh, migrated database of this kind."""
    if kind == "postgres":
        with stack.postgres_database() as url:
            env = stack.base_env(url, redis_url=None, LOG_LEVEL="WARNING")
            stack.manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
            yield env
        return
    env = stack.base_env(f"sqlite:///{tmp / name}.sqlite3", redis_url=None, LOG_LEVEL="WARNING")
    stack.manage(env, "migrate", "--noinput", "-v", "0", timeout=600)
    yield env


def old_tree(ref: str, tmp: Path) -> Path:
    """The code of commit ``ref``, extracted (git archive) into a folder of its own."""
    target = tmp / "old-code"
    target.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def line(label: str, result: dict) -> str:
    server = result["server_cpu_seconds"]
    server_cpu = "" if server is None else f" + database {server:.1f} s"
    return (
        f"    {label:<28} {result['seconds']:6.1f} s  peak RSS {result['peak_rss_mb']:4.0f} MB  "
        f"(CPU: import {result['cpu_seconds']:.1f} s{server_cpu}; load {result['load']:.1f}; "
        f"Django alone {result['rss_before_mb']:.0f} MB)\n      -> {result['output']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--responses", type=int, default=2, help="answers per prompt (trl and battles: 2)")
    parser.add_argument("--format", choices=["jsonl", "csv", "trl", "battles"], default="jsonl")
    parser.add_argument("--answer", choices=["short", "long"], default="short")
    parser.add_argument("--database", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--old", default=OLD_REF, help=f"commit of the old code (default {OLD_REF}), or none")
    parser.add_argument("--child", nargs=3, metavar=("SLUG", "FILE", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if args.format in ("trl", "battles") and args.responses != 2:
        parser.error("trl and battles files have two answers per record: use --responses 2")

    kinds = ["postgres", "sqlite"] if args.database == "both" else [args.database]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        codes = {"new": ROOT}
        if args.old != "none":
            codes = {"old": old_tree(args.old, tmp), **codes}
        models = [f"import-model-{i}" for i in range(args.responses)]
        path = tmp / f"prompts.{'csv' if args.format == 'csv' else 'jsonl'}"
        write_file(path, args.format, args.prompts, models, args.answer)
        size = path.stat().st_size / 1e6
        print(
            f"import of {args.prompts:,} prompts x {args.responses} answers, {args.format} ({args.answer} answers, "
            f"file {size:.0f} MB); target < 30 s and < 300 MB peak RSS"
        )
        for kind in kinds:
            print(f"  {kind}:")
            for version, code in codes.items():
                with database(kind, tmp, version) as env:
                    setup_campaign(env, "imports", models)
                    for run in ("first import", "same file again"):
                        result = run_child(env, code, "imports", str(path), args.format)
                        print(line(f"{version}, {run}", result), flush=True)


if __name__ == "__main__":
    main()
