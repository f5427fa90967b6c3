"""``python -m vtts`` is the ``vtts`` command."""

import sys

from .cli import main

sys.exit(main())
