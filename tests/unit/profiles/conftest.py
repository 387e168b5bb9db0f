"""The suite runs with ``--import-mode=importlib``: put this folder on ``sys.path`` for its
helper module ``profiles_data``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
