"""``python -m tfrec``."""

import sys

from tfrec.cli import main

sys.exit(main())
