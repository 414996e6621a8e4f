"""``python -m deltagdml`` entry point."""

import sys

from deltagdml.cli import main

sys.exit(main())
