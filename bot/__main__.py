"""`python -m bot` runs the chatbook command line."""

import sys

from bot.cli import main

sys.exit(main())
