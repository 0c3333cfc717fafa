"""Arena's rating engine: pure Python and numpy, no Django.

Votes are aggregated into `PairCounts` (model x model outcome counts), and everything is fitted on
the counts: Bradley-Terry with Davidson ties (default) or ties as half wins, bootstrap and sandwich
intervals, ranks that respect the intervals, matrices; plus online Elo, style control and voter bias
statistics. See docs/ratings.md.

    from ratings import PairCounts, compute_leaderboard
    counts = PairCounts.from_battles(model_a, model_b, winner)   # winner: "model_a", "tie", ...
    board = compute_leaderboard(counts)                          # Davidson, 1,000 bootstrap rounds
    board.to_dict()["rows"][0]                                   # {"model": ..., "rating": ...}
"""

from .bias import length_bias, position_bias, tie_rates, wilson_interval
from .bt import SCALE, Fit, fit_bradley_terry
from .counts import Outcome, PairCounts, counts_by_category, outcomes_from_scores, parse_outcomes
from .elo import online_elo, update_elo
from .leaderboard import Leaderboard, Row, compute_leaderboard, rank_from_intervals
from .style import StyleControl, fit_style_control, style_features

__all__ = [
    "SCALE",
    "Fit",
    "Leaderboard",
    "Outcome",
    "PairCounts",
    "Row",
    "StyleControl",
    "compute_leaderboard",
    "counts_by_category",
    "fit_bradley_terry",
    "fit_style_control",
    "length_bias",
    "online_elo",
    "outcomes_from_scores",
    "parse_outcomes",
    "position_bias",
    "rank_from_intervals",
    "style_features",
    "tie_rates",
    "update_elo",
    "wilson_interval",
]
