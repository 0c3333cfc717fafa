"""``python -m ratings``: see `ratings.cli`."""

import os
import sys

# One OpenBLAS thread: faster on the engine's small matrices (docs/ratings.md). `python -m ratings` imports the
# package, numpy with it, before it runs this file, so the variable alone comes too late for this process (it
# still reaches child processes): the loaded OpenBLAS is told at run time too, unless the caller chose a number.
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")

from .cli import main

sys.exit(main())
