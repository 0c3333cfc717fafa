"""Leaderboards of a campaign: vote aggregates folded incrementally, rating snapshots fitted by the pure
``ratings`` engine, the recompute tasks that keep them fresh, and the leaderboard pages.

``ratings`` (the engine) knows nothing of Django; this sub-app is where votes meet it.
"""
