"""``python -m sklearn_blend``: the command line (see :mod:`sklearn_blend.cli`)."""

import sys

from .cli import main

sys.exit(main())
