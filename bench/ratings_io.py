"""Benchmark of ``python -m ratings fit FILE --bootstrap 1000`` end to end, old code against new, same run.

    .venv/bin/python bench/ratings_io.py                 # 1M battles x 100 models in CSV, JSONL and a
                                                         # FastChat JSON list, then 1.7M FastChat records
    .venv/bin/python bench/ratings_io.py --repeat 3      # best of 3 runs of each command
    .venv/bin/python bench/ratings_io.py --old-ref REF   # the "old" code: the ratings/ package at REF

"Old" is the ``ratings`` package as it was at ``--old-ref`` (default ``c1db568``, before the chord bootstrap,
the JSON pieces and the one-thread OpenBLAS of ``python -m ratings``; ``0d7e720`` is the row-by-row reader),
extracted with ``git archive`` into a temporary folder and run from there; "new" is this checkout. Each
command runs in its own process, as a user would run it: wall time, CPU time (user + system, all threads)
and peak memory as the process's maximum resident set (``wait4``); then the new command's phases in one
process (CPU and wall). Both must print the same ratings, ranks and counts, and intervals within 0.01 Elo
points (the bootstrap's solvers stop within 0.001 Elo points of the optimum; checked and printed).

The files are generated once into var/bench-ratings-io/: ratings from N(1000, 120), Davidson ties
(nu = 0.25, about 10%) and 5% "both bad"; records carry the public arena's fields (question_id,
model_a, model_b, winner, judge, turn, anony, language, tstamp); the JSON lists are written as
FastChat's clean_battle_data.py writes them (``json.dump(..., indent=2)``, about 250 bytes a record).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ratings.simulate import simulate_battles  # noqa: E402

DATA = ROOT / "var" / "bench-ratings-io"
OLD_REF = "c1db568"  # before the chord bootstrap (0d7e720: the last commit with the row-by-row reader)
N_MODELS = 100
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")


def battles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = np.random.default_rng(0).normal(1000, 120, N_MODELS)
    a, b, o = simulate_battles(true, n, rng=rng, ties="davidson", nu=0.25)
    o = o.copy()
    o[rng.random(n) < 0.05] = 3
    return a, b, o


def records(n: int, seed: int):
    """Dicts of the public arena's battle fields, made lazily."""
    a, b, o = battles(n, seed)
    names = [f"model-{i:03d}" for i in range(N_MODELS)]
    anony = np.random.default_rng(seed + 1).random(n) < 0.9
    for i, (x, y, z, anon) in enumerate(zip(a.tolist(), b.tolist(), o.tolist(), anony.tolist(), strict=True)):
        yield {
            "question_id": f"{i:032x}",
            "model_a": names[x],
            "model_b": names[y],
            "winner": WINNERS[z],
            "judge": f"arena_user_{i % 50_000}",
            "turn": 1 + i % 3,
            "anony": anon,
            "language": "English",
            "tstamp": 1.7e9 + i * 0.5,
        }


def write(path: Path, fmt: str, n: int, seed: int) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    dumps = json.JSONEncoder().encode
    with tmp.open("w", encoding="utf-8") as f:
        if fmt == "csv":
            f.write("question_id,model_a,model_b,winner,judge,turn,anony,language,tstamp\n")
            f.writelines(",".join(str(v) for v in r.values()) + "\n" for r in records(n, seed))
        elif fmt == "jsonl":
            f.writelines(dumps(r) + "\n" for r in records(n, seed))
        else:  # FastChat: json.dump(battles, f, indent=2), written record by record
            f.write("[")
            for i, r in enumerate(records(n, seed)):
                body = ",\n".join(f"    {dumps(k)}: {dumps(v)}" for k, v in r.items())
                f.write(("\n" if i == 0 else ",\n") + "  {\n" + body + "\n  }")
            f.write("\n]")
    tmp.rename(path)
    return path


def old_package(ref: str, into: Path) -> Path:
    """The ratings/ package at ``ref``, extracted under ``into``."""
    archive = subprocess.run(["git", "archive", ref, "ratings"], cwd=ROOT, capture_output=True, check=True).stdout
    path = into / "archive.tar"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    return into


def run_fit(cwd: Path, path: Path, extra: list[str]) -> tuple[float, float, str, float]:
    """(wall seconds, peak resident set in MiB, stdout, CPU seconds) of one ``python -m ratings fit`` process."""
    env = dict(os.environ, PYTHONPATH=str(cwd))
    cmd = [sys.executable, "-m", "ratings", "fit", str(path), "--bootstrap", "1000", "--json", *extra]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, for the child's own peak memory
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {err.read().decode()[-2000:]}")
        return elapsed, usage.ru_maxrss / 1024, out.read().decode(), usage.ru_utime + usage.ru_stime


PHASES = """
import resource, sys, time
def now():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime
marks = [now()]
from ratings.io import read_battles
from ratings.leaderboard import compute_leaderboard
marks.append(now())
battles = read_battles(sys.argv[1], anony_only=len(sys.argv) > 2)
marks.append(now())
counts = battles.counts()
marks.append(now())
compute_leaderboard(counts, bootstrap=1000)
marks.append(now())
names = ("import", "read", "aggregate", "fit with 1,000 rounds")
print(", ".join(f"{n} {b[0] - a[0]:.2f} s (CPU {b[1] - a[1]:.2f})" for n, a, b in zip(names, marks, marks[1:])))
"""


def phases(path: Path, extra: list[str]) -> str:
    """Where the new command's time goes, measured in one process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-c", PHASES, str(path), *(["anony"] if "--anony-only" in extra else [])]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()


def best(cwd: Path, path: Path, extra: list[str], repeat: int) -> tuple[float, float, str, float, list[float]]:
    """The fastest of ``repeat`` runs (wall s, the highest peak MiB, stdout, its CPU s, every wall time)."""
    runs = [run_fit(cwd, path, extra) for _ in range(repeat)]
    fastest = min(runs, key=lambda r: r[0])
    return fastest[0], max(r[1] for r in runs), fastest[2], fastest[3], [r[0] for r in runs]


def compare(old: list[dict], new: list[dict]) -> str:
    """ "same board" with the largest interval difference, or what differs."""
    exact = [{k: v for k, v in row.items() if k not in ("ci_low", "ci_high")} for row in (*old, *new)]
    if exact[: len(old)] != exact[len(old) :]:
        return "BOARDS DIFFER"
    pairs = [(a[k], b[k]) for a, b in zip(old, new, strict=True) for k in ("ci_low", "ci_high")]
    worst = max((abs(x - y) for x, y in pairs if x is not None and y is not None), default=0.0)
    return f"same board, intervals within {worst:.4f}" if worst < 0.01 else f"INTERVALS DIFFER by {worst:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-ref", default=OLD_REF)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each new command (best is shown)")
    parser.add_argument("--no-old", action="store_true", help="skip the old code (its 1.7M run takes a minute)")
    args = parser.parse_args()

    print("generating files (once) ...", flush=True)
    cases = [
        ("CSV, 1M", write(DATA / "battles-1m.csv", "csv", 1_000_000, 1), []),
        ("battles JSONL, 1M", write(DATA / "battles-1m.jsonl", "jsonl", 1_000_000, 1), []),
        ("FastChat JSON list, 1M", write(DATA / "battles-1m.json", "json", 1_000_000, 1), []),
        (
            "FastChat JSON list, 1.7M, --anony-only",
            write(DATA / "clean_battle-1.7m.json", "json", 1_700_000, 2),
            ["--anony-only"],
        ),
    ]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    header = (
        f"{'file':<40} {'MB':>6}  {'old s':>7} {'CPU s':>6} {'old MiB':>8}  {'new s':>7} {'CPU s':>6} {'new MiB':>8}"
        f"  {'speed-up':>8}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        old = None if args.no_old else old_package(args.old_ref, Path(tmp))
        for label, path, extra in cases:
            size = path.stat().st_size / 1e6
            new_s, new_mib, new_out, new_cpu, times = best(ROOT, path, extra, args.repeat)
            new = f"{new_s:7.2f} {new_cpu:6.2f} {new_mib:8.0f}"
            if old is not None:
                old_s, old_mib, old_out, old_cpu, _ = best(old, path, extra, 1)
                same = compare(json.loads(old_out), json.loads(new_out))
                line = f"{old_s:7.2f} {old_cpu:6.2f} {old_mib:8.0f}  {new}  {old_s / new_s:7.1f}x  {same}"
            else:
                line = f"{'-':>7} {'-':>6} {'-':>8}  {new}"
            runs = f"  (runs: {', '.join(f'{t:.2f}' for t in times)})" if len(times) > 1 else ""
            print(f"{label:<40} {size:6.0f}  {line}{runs}", flush=True)
            print(f"{'':<48}new: {phases(path, extra)}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 s target at 1M, 5 s at 1.7M; busy machines run slower)")


if __name__ == "__main__":
    main()
