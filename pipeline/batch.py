"""The job: sheet -> normalised numbers -> merged messages -> (send) -> results workbook.

`check()` and `send()` are what the CLI and the notebooks call; each returns a `BatchResult`
and writes the results workbook (contract §6). `prepare()` is the network-free part they share.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from pipeline import encoding, phones, schema
from pipeline.errors import Cancelled
from pipeline.journal import DEFAULT_JOURNAL, Journal, Run, RunIdentity
from pipeline.providers.textlocal import BULK_LIMIT, TextlocalClient
from pipeline.results import RESULT_COLUMNS, STATUSES, write_results
from pipeline.resume import Resumed, apply_journal
from pipeline.sending import SendSettings, send_ready
from pipeline.sheet import Sheet, load_sheet
from pipeline.template import Template, load_template

OUTPUT_DIR = Path("output")

ProgressCallback = Callable[[int], None]

# Statuses that mean "this row was handed to the provider and accepted".
ACCEPTED = ("sent", "scheduled")


@dataclass
class Prepared:
    """A validated, merged sheet: one results row per input row, before any sending."""

    sheet: Sheet
    template: Template
    results: pd.DataFrame  # index = source_row; columns = RESULT_COLUMNS without source_row
    started_at: datetime = field(default_factory=lambda: datetime.now().astimezone())

    @property
    def ready(self) -> pd.DataFrame:
        """The rows that would be sent."""
        return self.results[self.results["status"] == "ready"]

    def credits(self, rows: pd.DataFrame | None = None) -> int:
        """Credits the given rows (default: every ready row) cost: one per segment per number."""
        rows = self.ready if rows is None else rows
        return int(rows["segments"].sum())


@dataclass
class BatchResult:
    """What a run did: the per-row results, the summary and where the workbook went."""

    prepared: Prepared
    out_path: Path
    summary: list[tuple[str, object]]
    stopped: str | None = None  # why the provider stopped the run (exit 3), else None
    balance: int | None = None
    run: Run | None = None  # the journal's run (send only)
    resumed: Resumed | None = None  # what earlier runs of this job had settled (send only)
    interrupted: bool = False  # Ctrl-C: finished what was in flight, sent nothing more
    attempted: int = 0  # rows handed to the provider this time

    @property
    def results(self) -> pd.DataFrame:
        """The per-row results (index = source_row)."""
        return self.prepared.results

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status, every status present (zeros included)."""
        found = Counter(self.results["status"])
        return {status: int(found.get(status, 0)) for status in STATUSES}


def default_out_path(sheet_path: Path, now: datetime | None = None) -> Path:
    """`output/<sheet-stem>-results-<YYYYmmdd-HHMMSS>.xlsx` (contract §2)."""
    now = now or datetime.now()
    path = OUTPUT_DIR / f"{sheet_path.stem}-results-{now:%Y%m%d-%H%M%S}.xlsx"
    serial = 2
    while path.exists():  # two runs in the same second keep both workbooks
        path = OUTPUT_DIR / f"{sheet_path.stem}-results-{now:%Y%m%d-%H%M%S}-{serial}.xlsx"
        serial += 1
    return path


def prepare(sheet: Sheet, template: Template) -> Prepared:
    """Normalise numbers, find invalid ones and duplicates, merge and measure every message."""
    frame = sheet.frame
    index = frame.index
    n = len(frame)

    e164 = phones.normalise_many(frame[sheet.phone_column])
    normalised = pd.DataFrame({"phone_e164": e164}, index=index, dtype=object)
    invalid = set(schema.invalid_phone_rows(normalised))

    columns = {name: frame[name].tolist() for name in template.columns}
    messages, missing = template.render(columns, n)
    encodings, segments = encoding.analyse(messages)

    status: list[str] = ["ready"] * n
    detail: list[str | None] = [None] * n
    first_row: dict[str, int] = {}
    raw_phones = frame[sheet.phone_column].tolist()
    # Precedence: a bad number can never be sent; then duplicates (contract §4: the first row
    # with a number is the one sent); then empty cells the template needs (contract §5).
    for i, row in enumerate(index):
        if row in invalid:
            status[i] = "invalid_number"
            detail[i] = phones.explain(raw_phones[i])
            continue
        number = e164[i]
        first = first_row.setdefault(number, row)
        if first != row:
            status[i] = "duplicate"
            detail[i] = f"same number as row {first}"
        elif missing[i] is not None:
            status[i] = "missing_field"
            detail[i] = f"{missing[i]} is empty"

    results = pd.DataFrame(
        {
            "phone_e164": e164,
            "message": messages,
            "encoding": encodings,
            "segments": segments,
            "status": status,
            "detail": detail,
            "provider_message_id": None,
            "batch_id": None,
            "sent_at": None,
            "delivery_status": None,
        },
        index=index,
        dtype=object,
    )
    assert list(results.columns) == list(RESULT_COLUMNS[1:])
    return Prepared(sheet=sheet, template=template, results=results)


def load(
    sheet_path: str | Path,
    template_path: str | Path,
    *,
    sheet: str | None = None,
    phone_column: str | None = None,
) -> Prepared:
    """Read the sheet and the template and prepare every row (no network)."""
    loaded = load_sheet(sheet_path, sheet=sheet, phone_column=phone_column)
    template = load_template(template_path, list(loaded.frame.columns))
    return prepare(loaded, template)


def check(
    sheet_path: str | Path,
    template_path: str | Path,
    *,
    sheet: str | None = None,
    phone_column: str | None = None,
    out: str | Path | None = None,
) -> BatchResult:
    """Validate and merge without sending; write the results workbook with `ready` rows."""
    prepared = load(sheet_path, template_path, sheet=sheet, phone_column=phone_column)
    return finish(prepared, out, mode="check", provider=None, sender=None)


def finish(
    prepared: Prepared,
    out: str | Path | None,
    *,
    mode: str,
    provider: str | None,
    sender: str | None,
    stopped: str | None = None,
    balance: int | None = None,
    extra: list[tuple[str, object]] | None = None,
) -> BatchResult:
    """Build the summary and write the results workbook for every row."""
    out_path = Path(out) if out is not None else default_out_path(prepared.sheet.path)
    summary = build_summary(prepared, mode=mode, provider=provider, sender=sender,
                            stopped=stopped, balance=balance) + (extra or [])
    write_results(out_path, prepared.sheet.frame, prepared.results, summary)
    return BatchResult(prepared=prepared, out_path=out_path, summary=summary,
                       stopped=stopped, balance=balance)


def build_summary(
    prepared: Prepared,
    *,
    mode: str,
    provider: str | None,
    sender: str | None,
    stopped: str | None,
    balance: int | None,
) -> list[tuple[str, object]]:
    """The Summary sheet's rows (contract §6): counts, messages, credits, who, what, when."""
    results = prepared.results
    found = Counter(results["status"])
    if mode == "check":
        going = results[results["status"] == "ready"]
    else:
        going = results[results["status"].isin(ACCEPTED)]
    sheet = prepared.sheet
    rows: list[tuple[str, object]] = [("mode", mode), ("rows", len(results))]
    rows += [(f"status: {status}", int(found.get(status, 0))) for status in STATUSES]
    rows += [
        ("messages", len(going)),
        ("segments", int(going["segments"].sum())),
        ("credits", int(going["segments"].sum())),
        ("unicode messages", int((going["encoding"] == "UCS-2").sum())),
        ("provider", provider or "none (check only)"),
        ("sender", sender or ""),
        ("input file", sheet.path.name),
        ("input sha256", sheet.sha256),
        ("worksheet", sheet.name or ""),
        ("phone column", sheet.phone_column),
        ("template", prepared.template.text),
        ("template sha256", hashlib.sha256(prepared.template.text.encode()).hexdigest()),
        ("started at", prepared.started_at.isoformat(timespec="seconds")),
        ("finished at", datetime.now().astimezone().isoformat(timespec="seconds")),
    ]
    if balance is not None:
        rows.append(("provider balance after", balance))
    if stopped:
        rows.append(("stopped", stopped))
    return rows


@dataclass(frozen=True)
class Plan:
    """What a send is about to do, for the caller to show (and confirm) before it starts."""

    run: Run
    resumed: Resumed
    going: pd.DataFrame  # the rows this run will hand to the provider
    credits: int


def send(
    prepared: Prepared,
    client: TextlocalClient,
    *,
    provider: str,
    sender: str | None,
    chunk_size: int = BULK_LIMIT,
    limit: int | None = None,
    test: bool = False,
    concurrency: int = 4,
    rate: float | None = None,
    journal: str | Path = DEFAULT_JOURNAL,
    resend_unknown: bool = False,
    out: str | Path | None = None,
    before_send: Callable[[Plan], bool] | None = None,
    progress: ProgressCallback | None = None,
) -> BatchResult:
    """Send the prepared ready rows through `client`, journalled, and write the workbook.

    Rerunning the same job (same input file, worksheet, template, sender, provider, test mode)
    sends only rows never accepted; earlier outcomes are carried into the workbook.
    `before_send(plan)` may show the plan and return False to cancel (raises `Cancelled`,
    nothing sent, nothing written). A provider stop (bad key, no credits) or Ctrl-C still
    writes every row: unsent ones are `failed` with the reason.
    """
    settings = SendSettings(sender=sender, chunk_size=chunk_size, limit=limit, test=test,
                            concurrency=concurrency, rate=rate)
    sheet = prepared.sheet
    identity = RunIdentity(input_path=str(sheet.path.resolve()), worksheet=sheet.name,
                           template=prepared.template.text, sender=sender, route="service",
                           provider=provider, test=test)
    with Journal.open(journal) as book:
        run = book.begin_run(identity, sheet.sha256)
        resumed = apply_journal(prepared.results, book.entries(run.id),
                                resend_unknown=resend_unknown)
        going = prepared.ready if limit is None else prepared.ready.head(limit)
        plan = Plan(run=run, resumed=resumed, going=going, credits=prepared.credits(going))
        if before_send is not None and not before_send(plan):
            raise Cancelled("nothing sent")
        outcome = send_ready(prepared.results, client, book, run.id, settings,
                             progress=progress)
    extra: list[tuple[str, object]] = [
        ("journal", str(journal)), ("journal run", run.id),
        ("settled by earlier runs", resumed.total_skipped),
    ]
    if outcome.interrupted:
        extra.append(("interrupted", "yes: rerun the same command to send the rest"))
    result = finish(prepared, out, mode="test" if test else "send", provider=provider,
                    sender=sender, stopped=outcome.stopped, balance=outcome.balance,
                    extra=extra)
    result.run = run
    result.resumed = resumed
    result.interrupted = outcome.interrupted
    result.attempted = outcome.attempted
    return result
