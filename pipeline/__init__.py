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
    "load_sheet": "pipeline.sheet",
    "Sheet": "pipeline.sheet",
    "load_template": "pipeline.template",
    "load": "pipeline.batch",
    "load_rules": "pipeline.compliance",
    "check": "pipeline.batch",
    "send": "pipeline.batch",
    "Prepared": "pipeline.batch",
    "BatchResult": "pipeline.batch",
    "open_provider": "pipeline.providers",
    "update_delivery": "pipeline.delivery",
    "DeliveryReport": "pipeline.delivery",
    "read_results": "pipeline.results",
    "write_results": "pipeline.results",
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
