"""Arena: side-by-side evaluation of language models."""

import os

# One OpenBLAS thread per process, set before numpy loads. The rating engine's matrices are about
# 100 x 100, where OpenBLAS's threads only wait for each other: on a busy 2-core machine a leaderboard
# with sandwich intervals took 40-50 ms with them and about 10 ms without (the bootstrap, which runs
# its rounds on threads of its own, took about as long either way). See docs/ratings.md; set the
# variable to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from arena.celery import app as celery_app

__all__ = ["celery_app"]
