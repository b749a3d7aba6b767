"""``python -m grestws serve MODULE:ATTR``."""

from __future__ import annotations

import sys

from grestws.cli import main

if __name__ == "__main__":
    sys.exit(main())
