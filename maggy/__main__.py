"""``python -m maggy``: the command line (:mod:`maggy.ui.cli`)."""

import sys

from maggy.ui.cli import main

if __name__ == "__main__":
    sys.exit(main())
