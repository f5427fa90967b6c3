"""``python -m vtts.frontend``: the HTTP frontend process (the supervisor starts it)."""

import sys

from .server import main

sys.exit(main())
