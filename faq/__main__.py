"""`python -m faq check DIR` / `python -m faq match --faq-dir DIR TEXT`."""

import sys

from faq.cli import main

sys.exit(main())
