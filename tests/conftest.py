"""Test-wide settings.

Every test runs under a non-UTC process time zone so that any day computed from the process's
(or the JVM's) local zone instead of UTC shows up as a failure.
"""

from __future__ import annotations

import os
import time

os.environ["TZ"] = "Asia/Kolkata"
time.tzset()
