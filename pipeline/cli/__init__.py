"""The `smsbatch` command line: parse options, call the library, print, set the exit code.

Heavy libraries (pandas, pandera, requests) are imported inside the commands so that
`smsbatch --help` stays fast. `jobs.py` holds the commands that run a job (check, send);
`provider.py` the ones around it (reconcile, status, receipts, balance, sandbox).
"""

from __future__ import annotations

from pipeline.cli import jobs, provider  # noqa: F401 - importing them registers the commands
from pipeline.cli.options import main

__all__ = ["main"]
