"""Exports: leaderboards, battles and reward-model preference pairs, streamed to files by a worker.

See docs/exports.md. The admin page, the JSON API (/api/v1/exports) and ``manage.py export_data``
all write files through `arena.exports.writer.write_export`; jobs are started by
`arena.exports.dispatch.start_export` and run by `arena.exports.jobs.run_job` (the Celery task's body).
Layers, top down: dispatch, tasks, jobs, writer, vote_export and leaderboard, queries and sinks,
filters and progress, formats; a module imports only the layers below it.
"""
