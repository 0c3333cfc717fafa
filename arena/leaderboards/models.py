"""Stored rating state: pairwise count aggregates folded in incrementally, and leaderboard snapshots.

Pages read snapshots only; the recompute task (arena.leaderboards.tasks) is the only writer.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from arena.models import Campaign
from ratings.counts import PairCounts

OVERALL = ""  # the dimension key of the overall verdict, and the category key of "all categories"


class PairAggregate(models.Model):
    """Counts of outcomes per model pair for one campaign, dimension and category (a PairCounts).

    Stored compactly: the sorted model names as JSON and the three count matrices as raw float64
    bytes (`PairCounts.to_bytes`), so the recompute task reads and rewrites them with a copy rather
    than a JSON parse of thousands of pair rows. Use `pair_counts()` and `set_counts()`.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pair_aggregates")
    dimension = models.CharField(max_length=40, blank=True, default=OVERALL)
    category = models.CharField(max_length=64, blank=True, default=OVERALL)
    model_names = models.JSONField(default=list)
    cells = models.BinaryField(default=bytes)
    n_votes = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "dimension", "category"], name="pair_aggregate_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.dimension or 'overall'}/{self.category or 'all'}"

    def pair_counts(self) -> PairCounts:
        return PairCounts.from_bytes(self.model_names, self.cells) if self.model_names else PairCounts.empty()

    def set_counts(self, counts: PairCounts) -> None:
        self.model_names = list(counts.models)
        self.cells = counts.to_bytes()
        self.n_votes = round(counts.n_votes)

    @property
    def counts(self) -> dict:
        """The counts in PairCounts' JSON form (`PairCounts.to_dict`), for readers that want plain data."""
        return self.pair_counts().to_dict()


class EloState(models.Model):
    """Per-campaign state folded vote by vote: online Elo ratings (in vote order) and bias tallies.

    ``tallies``: {"left": n, "right": n, "tie": n, "both_bad": n, "longer_won": n, "shorter_won": n},
    the counts behind the position-bias and length-bias statistics.
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="elo_state")
    ratings = models.JSONField(default=dict)
    tallies = models.JSONField(default=dict)
    n_votes = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"elo {self.campaign_id}"


class LeaderboardSnapshot(models.Model):
    """The latest leaderboard of a campaign for one dimension, category and method."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="snapshots")
    dimension = models.CharField(max_length=40, blank=True, default=OVERALL)
    category = models.CharField(max_length=64, blank=True, default=OVERALL)
    method = models.CharField(max_length=32)
    data = models.JSONField()
    # "bootstrap" or "sandwich" for Bradley-Terry boards ("" otherwise): the after-vote recompute
    # refits with sandwich intervals, beat's sweep replaces them with bootstrap ones (arena.leaderboards.tasks).
    intervals = models.CharField(max_length=16, blank=True, default="")
    n_votes = models.PositiveIntegerField()
    computed_at = models.DateTimeField(default=timezone.now)
    # The board's three model x model matrices as raw float64 (`Leaderboard.matrices_to_bytes`); as
    # JSON inside ``data`` they made writing a snapshot ten times slower. Empty for boards without
    # matrices (Elo, style) and for snapshots written before they moved, whose ``data`` holds them.
    matrices = models.BinaryField(default=bytes)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "dimension", "category", "method"], name="snapshot_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.dimension or 'overall'}/{self.category or 'all'}/{self.method}"

    def board(self) -> dict:
        """``data`` with its matrices, as `Leaderboard.to_dict` gives them (what the pages show)."""
        if not self.matrices:
            return self.data
        from ratings.leaderboard import matrices_from_bytes

        models = self.data.get("matrices", {}).get("models", [])
        return {**self.data, "matrices": matrices_from_bytes(models, self.matrices)}
