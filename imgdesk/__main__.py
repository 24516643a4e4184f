"""Allow ``python -m imgdesk``."""

import sys

from imgdesk.cli import main

sys.exit(main())
