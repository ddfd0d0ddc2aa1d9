"""The `smsbatch` command line: parse options, call the library, print, set the exit code.

Heavy libraries (pandas, pandera, requests) are imported inside the commands so that
`smsbatch --help` stays fast. `options.py` is the group and the shared options; `jobs.py` runs
a job (check, send); `delivery.py` follows it up (reconcile, status, receipts); `admin.py` the
rest (balance, sandbox, purge).
"""

from __future__ import annotations

from pipeline.cli import admin, delivery, jobs  # noqa: F401 - importing registers the commands
from pipeline.cli.options import main

__all__ = ["main"]
