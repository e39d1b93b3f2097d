"""``python -m crnn`` (also what ``torchrun -m crnn`` runs)."""

import sys

from crnn.cli import main

sys.exit(main())
