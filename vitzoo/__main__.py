"""``python -m vitzoo`` (and ``torchrun -m vitzoo embed ...``) runs the command line."""

import sys

from .cli import main

sys.exit(main())
