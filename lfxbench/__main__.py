"""``python -m lfxbench``: the command line."""

import sys

from lfxbench.cli import main

sys.exit(main())
