"""``python -m vtts.workers``: start one worker process (the supervisor does this)."""

import sys

from .worker import main

sys.exit(main())
