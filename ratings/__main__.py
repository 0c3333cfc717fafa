"""``python -m ratings``: see `ratings.cli`."""

import os
import sys

# One OpenBLAS thread: faster on the engine's small matrices (see arena/__init__.py), set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .cli import main

sys.exit(main())
