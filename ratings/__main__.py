"""``python -m ratings``: see `ratings.cli`."""

import sys

from .cli import main

sys.exit(main())
