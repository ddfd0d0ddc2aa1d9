"""smsbatch: personalised bulk SMS from a spreadsheet, through Textlocal (India).

The public API, for scripts and notebooks (imported lazily so `smsbatch --help` stays fast):

    load_sheet(path, sheet=None, phone_column=None) -> Sheet
    load(sheet_path, template_path, ...) -> Prepared        # read + validate + merge
    check(sheet_path, template_path, ..., out=None) -> BatchResult
    send(prepared, client, provider=..., sender=..., ...) -> BatchResult
    open_provider("sandbox" | "textlocal") -> context manager yielding a Connection
    read_results(path) -> DataFrame
    update_delivery(results_path, client, journal=...) -> DeliveryReport   # delivery receipts
    load_rules(route=..., dlt_template=..., suppress=..., ...) -> Rules    # India's rules
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_sheet": "pipeline.read.sheet",
    "Sheet": "pipeline.read.sheet",
    "load_template": "pipeline.merge.template",
    "load": "pipeline.job",
    "load_rules": "pipeline.validate.rules",
    "check": "pipeline.job",
    "send": "pipeline.job",
    "Prepared": "pipeline.job",
    "BatchResult": "pipeline.job",
    "open_provider": "pipeline.providers",
    "update_delivery": "pipeline.report.delivery",
    "DeliveryReport": "pipeline.report.delivery",
    "read_results": "pipeline.report.workbook",
    "write_results": "pipeline.report.workbook",
    "SmsBatchError": "pipeline.errors",
    "InputError": "pipeline.errors",
    "ProviderError": "pipeline.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import public names on first use (PEP 562)."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
