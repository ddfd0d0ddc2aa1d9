"""smsbatch: personalised bulk SMS from a spreadsheet, through Textlocal (India).

The public API, for scripts and notebooks:

    load_sheet(path, sheet=None, phone_column=None) -> Sheet
    load(sheet_path, template_path, ...) -> Prepared        # read + validate + merge
    check(sheet_path, template_path, ..., out=None) -> BatchResult
    send(prepared, client, provider=..., sender=..., ...) -> BatchResult
    open_provider("sandbox" | "textlocal") -> context manager yielding a Connection
    read_results(path) -> DataFrame
    update_delivery(results_path, client, journal=...) -> DeliveryReport   # delivery receipts
    load_rules(route=..., dlt_template=..., suppress=..., ...) -> Rules    # India's rules

Names are imported on first use (PEP 562), so `smsbatch --help` stays fast; the imports under
TYPE_CHECKING let type checkers and editors see the real signatures.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.errors import InputError, ProviderError, SmsBatchError
    from pipeline.job import BatchResult, check, load, send
    from pipeline.merge.prepare import Prepared
    from pipeline.merge.template import load_template
    from pipeline.providers import open_provider
    from pipeline.providers.base import Provider
    from pipeline.read.sheet import Sheet, load_sheet
    from pipeline.report.delivery import DeliveryReport, update_delivery
    from pipeline.report.workbook import read_results, write_results
    from pipeline.validate.rules import load_rules

__all__ = [
    "BatchResult",
    "DeliveryReport",
    "InputError",
    "Prepared",
    "Provider",
    "ProviderError",
    "Sheet",
    "SmsBatchError",
    "check",
    "load",
    "load_rules",
    "load_sheet",
    "load_template",
    "open_provider",
    "read_results",
    "send",
    "update_delivery",
    "write_results",
]

_EXPORTS = {
    "load_sheet": "pipeline.read.sheet",
    "Sheet": "pipeline.read.sheet",
    "load_template": "pipeline.merge.template",
    "load": "pipeline.job",
    "load_rules": "pipeline.validate.rules",
    "check": "pipeline.job",
    "send": "pipeline.job",
    "Prepared": "pipeline.merge.prepare",
    "BatchResult": "pipeline.job",
    "open_provider": "pipeline.providers",
    "Provider": "pipeline.providers.base",
    "update_delivery": "pipeline.report.delivery",
    "DeliveryReport": "pipeline.report.delivery",
    "read_results": "pipeline.report.workbook",
    "write_results": "pipeline.report.workbook",
    "SmsBatchError": "pipeline.errors",
    "InputError": "pipeline.errors",
    "ProviderError": "pipeline.errors",
}


def __getattr__(name: str) -> Any:
    """Import public names on first use (PEP 562)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        # Cache it: importing a stage package (e.g. pipeline.sending) binds that name on this
        # module, and a cached public name keeps `pipeline.send` the function.
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
