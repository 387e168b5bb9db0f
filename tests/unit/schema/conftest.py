"""The suite runs with ``--import-mode=importlib``: put this folder on ``sys.path`` so that the
tests can import their helper module ``validate_reference``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
