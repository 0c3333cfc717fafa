"""Command line: ``python -m ratings fit FILE`` prints a leaderboard (a table, or JSON).

Exit status: 0 on success, 2 on bad input or options (message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .io import FORMATS, InputError, read_battles
from .leaderboard import Leaderboard, compute_leaderboard

JSON_FIELDS = (
    "model",
    "rating",
    "ci_low",
    "ci_high",
    "rank",
    "votes",
    "wins",
    "losses",
    "ties",
    "both_bad",
    "provisional",
)


def _anchor(value: str) -> tuple[str, float]:
    name, sep, rating = value.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, float(rating)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MODEL=RATING, got {value!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ratings", description="Arena rating engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a Bradley-Terry leaderboard to a battle file")
    fit.add_argument("file", help="battle file (.csv, .jsonl or .json)")
    fit.add_argument("--format", choices=FORMATS, help="input format (default: from the extension)")
    fit.add_argument(
        "--ties",
        choices=("davidson", "half"),
        default="davidson",
        help="tie model: fitted Davidson tie parameter (default) or tie = half a win",
    )
    fit.add_argument("--both-bad", choices=("tie", "exclude"), default="tie", help="'both bad' votes")
    fit.add_argument("--intervals", choices=("bootstrap", "sandwich", "none"), default="bootstrap")
    fit.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap rounds (1000)")
    fit.add_argument("--seed", type=int, default=0, metavar="S", help="bootstrap seed (0)")
    fit.add_argument("--anchor", type=_anchor, metavar="MODEL=RATING", help="pin one model's rating")
    fit.add_argument(
        "--min-votes",
        type=int,
        default=20,
        metavar="N",
        help="models with fewer votes are provisional and unranked (20)",
    )
    fit.add_argument("--anony-only", action="store_true", help="skip records with anony = false")
    fit.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return parser


def format_table(board: Leaderboard) -> str:
    """A fixed-width text table with a footer describing the method."""
    width = max([len("model")] + [len(r.model) for r in board.rows])
    lines = [
        f"{'rank':>4}  {'model':<{width}}  {'rating':>7}  {'95% CI':>17}  {'votes':>7}  {'wins':>6}  "
        f"{'losses':>6}  {'ties':>6}"
    ]

    def num(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    for r in board.rows:
        ci = f"[{num(r.ci_low, '.1f')}, {num(r.ci_high, '.1f')}]" if r.ci_low is not None else "-"
        mark = "*" if r.provisional else " "
        lines.append(
            f"{num(r.rank, 'd'):>4}  {r.model:<{width}}  {num(r.rating, '.1f'):>7}  {ci:>17}  "
            f"{r.votes:>7g}  {r.wins:>6g}  {r.losses:>6g}  {r.ties:>6g}{mark}"
        )
    ties = "Davidson ties" if board.ties == "davidson" else "ties as half wins"
    if board.ties == "davidson" and board.tie_parameter is not None:
        ties += f" (nu = {board.tie_parameter:.3f})"
    how = {
        "bootstrap": f"{board.bootstrap_rounds} bootstrap rounds, seed {board.seed}",
        "sandwich": "sandwich intervals",
        "none": "no intervals",
    }[board.intervals]
    lines.append(f"\n{board.n_votes:g} votes, Bradley-Terry with {ties}, both-bad as {board.both_bad}, {how}.")
    if any(r.provisional for r in board.rows):
        lines.append(f"* provisional: fewer than {board.min_votes} votes, not ranked.")
    lines.extend(f"warning: {w}" for w in board.warnings)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.bootstrap < 0 or args.min_votes < 0:
            raise ValueError("--bootstrap and --min-votes must be >= 0")
        battles = read_battles(args.file, args.format, anony_only=args.anony_only)
        board = compute_leaderboard(
            battles.counts(),
            ties=args.ties,
            both_bad=args.both_bad,
            intervals=args.intervals,
            bootstrap=args.bootstrap,
            seed=args.seed,
            anchor=args.anchor,
            min_votes=args.min_votes,
        )
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        rows = board.to_dict()["rows"]
        print(json.dumps([{k: row[k] for k in JSON_FIELDS} for row in rows], indent=2))
    else:
        print(format_table(board))
    return 0
