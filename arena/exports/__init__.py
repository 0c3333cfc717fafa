"""Exports: leaderboards, battles and reward-model preference pairs, streamed to files by a worker.

See docs/exports.md. The admin page, the JSON API (/api/v1/exports) and ``manage.py export_data``
all go through `arena.exports.runner`.
"""
