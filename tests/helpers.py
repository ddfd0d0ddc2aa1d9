"""Plain helpers shared by the tests: paths, the default test key, a settable clock.

The fixtures built on them (the `client` faked by `rsps`, the sandbox `server`, `sandbox`
and `clock`) are in conftest.py; import these names where a test needs them directly.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the checkout: input/, benchmarks/, README.md
DATA = Path(__file__).resolve().parent / "data"  # the committed fixtures (make_fixtures.py)

KEY = "sentinel-KEY-0123456789"  # the API key of the `client` fixture unless a module overrides
BASE = "https://api.example.test/"  # the provider base URL of the `client` fixture (faked)
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC = 2023-11-15 03:43:20 IST: the `clock` default


class Clock:
    """A settable clock: calling it gives `now`, which a test moves by assigning to it.

    `now` is unix seconds (what the sandbox reads) or an aware datetime (what our code reads);
    `unix()` gives it as unix seconds, so one clock can drive both our code and the sandbox.
    """

    def __init__(self, now: float | datetime) -> None:
        self.now = now

    def __call__(self):
        return self.now

    def unix(self) -> float:
        return self.now.timestamp() if isinstance(self.now, datetime) else float(self.now)
