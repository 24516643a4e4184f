"""Allow ``python -m imgdesk`` (and be the bundled app's entry point)."""

import multiprocessing
import sys

from imgdesk.cli import main

if __name__ == "__main__":
    # CSV files are read in a child process (imgdesk.core.reader): a bundled app starts that
    # child as itself, and this hands it over to the reading code.
    multiprocessing.freeze_support()
    sys.exit(main())
