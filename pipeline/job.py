"""The job: sheet -> normalised numbers -> merged messages -> (send) -> results workbook.

`load()` reads and prepares (prepare.py: every row's status, message and credits, no network);
`check()` and `send()` are what the CLI and the notebooks call; each returns a `BatchResult`
and writes the results workbook (docs/contract.md, "The results workbook"). `send()` journals
every request (sending/journal.py, sending/chunks.py) so a rerun resumes instead of resending
(docs/contract.md, "Sending, journal and resume").
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.clock import IST, Clock, iso_now, system_clock
from pipeline.errors import Cancelled, InputError, ProviderError, TransportError
from pipeline.merge.prepare import Prepared, prepare
from pipeline.merge.template import load_template
from pipeline.providers.base import Provider
from pipeline.read.sheet import load_sheet
from pipeline.report.workbook import workbook_lock, write_results
from pipeline.sending.chunks import SendSettings, mark, send_ready
from pipeline.sending.journal import Journal, Run, RunIdentity
from pipeline.sending.preflight import check_out_path, check_writable, estimate_bytes
from pipeline.sending.resume import (
    Resumed,
    apply_journal,
    apply_prior_sends,
    describe_window,
    ready_keys,
)
from pipeline.settings import BULK_LIMIT, default_journal, default_repeat_window, state_dir
from pipeline.statuses import ACCEPTED, STATUSES
from pipeline.validate.rules import Rules

OUTPUT_DIR = Path("output")

ProgressCallback = Callable[[int], None]


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


def default_out_path(
    sheet_path: Path, now: datetime | None = None, folder: Path = OUTPUT_DIR
) -> Path:
    """`output/<sheet-stem>-results-<YYYYmmdd-HHMMSS>.xlsx` (docs/contract.md, "Commands and
    options")."""
    now = now or datetime.now()
    path = folder / f"{sheet_path.stem}-results-{now:%Y%m%d-%H%M%S}.xlsx"
    serial = 2
    while path.exists():  # two runs in the same second keep both workbooks
        path = folder / f"{sheet_path.stem}-results-{now:%Y%m%d-%H%M%S}-{serial}.xlsx"
        serial += 1
    return path


def out_path_for(
    sheet_path: str | Path, out: str | Path | None, inputs: Iterable[str | Path] = ()
) -> Path:
    """Where the results workbook goes: `out` checked (check_out_path), else the default.
    Call it before reading anything: a bad --out costs the user nothing."""
    sheet = Path(sheet_path)
    if out is None:
        return default_out_path(sheet)
    return check_out_path(
        out,
        inputs=[sheet, *inputs],
        default_name=lambda folder: default_out_path(sheet, folder=folder),
    )


def load(
    sheet_path: str | Path,
    template_path: str | Path,
    *,
    sheet: str | None = None,
    phone_column: str | None = None,
    rules: Rules | None = None,
    checking: bool = False,
) -> Prepared:
    """Read the sheet and the template and prepare every row (no network)."""
    loaded = load_sheet(sheet_path, sheet=sheet, phone_column=phone_column)
    template = load_template(template_path, list(loaded.frame.columns))
    return prepare(
        loaded, template, rules, checking=checking, template_source=Path(template_path).name
    )


def check(
    sheet_path: str | Path,
    template_path: str | Path,
    *,
    sheet: str | None = None,
    phone_column: str | None = None,
    rules: Rules | None = None,
    out: str | Path | None = None,
) -> BatchResult:
    """Validate and merge without sending; write the results workbook with `ready` rows."""
    out_path = out_path_for(sheet_path, out, [template_path, *_rule_files(rules)])
    check_writable(out_path)  # fail in a second, not after reading a million rows
    with workbook_lock(out_path):
        prepared = load(
            sheet_path,
            template_path,
            sheet=sheet,
            phone_column=phone_column,
            rules=rules,
            checking=True,
        )
        return finish(prepared, out_path, mode="check", provider=None, sender=None)


def _rule_files(rules: Rules | None) -> list[Path]:
    """The files the rules were read from (DLT templates, suppression lists): inputs too."""
    return list(rules.sources) if rules is not None else []


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
    clock: Clock = system_clock,
) -> BatchResult:
    """Build the summary and write the results workbook for every row.

    After a send, outcomes must not be lost: when `out` cannot be written (a full disk), the
    workbook goes to the state directory's results/ folder, or the temp folder, instead, and
    `stopped` says where.
    """
    out_path = Path(out) if out is not None else default_out_path(prepared.sheet.path)
    summary = build_summary(
        prepared,
        mode=mode,
        provider=provider,
        sender=sender,
        stopped=stopped,
        balance=balance,
        clock=clock,
    ) + (extra or [])
    try:
        write_results(out_path, prepared.sheet.frame, prepared.results, summary)
    except InputError as exc:
        if mode == "check":
            raise
        out_path = _write_elsewhere(prepared, out_path, summary, exc)
        stopped = f"{stopped}; " if stopped else ""
        stopped += f"{exc}; the results were written to {out_path} instead"
    return BatchResult(
        prepared=prepared, out_path=out_path, summary=summary, stopped=stopped, balance=balance
    )


def _write_elsewhere(
    prepared: Prepared, out_path: Path, summary: list[tuple[str, object]], error: InputError
) -> Path:
    """Write the workbook in the first fallback folder that takes it; else re-raise `error`."""
    import tempfile

    for folder in (state_dir() / "results", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fallback = default_out_path(prepared.sheet.path, folder=folder)
            return write_results(fallback, prepared.sheet.frame, prepared.results, summary)
        except (InputError, OSError):
            continue
    raise error


def build_summary(
    prepared: Prepared,
    *,
    mode: str,
    provider: str | None,
    sender: str | None,
    stopped: str | None,
    balance: int | None,
    clock: Clock = system_clock,
) -> list[tuple[str, object]]:
    """The Summary sheet's rows: counts, messages, credits, who, what, when (docs/contract.md,
    "The results workbook")."""
    results = prepared.results
    status = results["status"].to_numpy()
    found = Counter(status.tolist())
    # Masks over the columns, not a filtered copy of a frame of a million rows.
    going = status == "ready" if mode == "check" else np.isin(status, list(ACCEPTED))
    parts = int(results["segments"].to_numpy()[going].sum())
    sheet = prepared.sheet
    rows: list[tuple[str, object]] = [("mode", mode), ("rows", len(results))]
    rows += [(f"status: {status}", int(found.get(status, 0))) for status in STATUSES]
    rows += [
        ("messages", int(going.sum())),
        ("segments", parts),
        ("credits", parts),
        ("unicode messages", int((results["encoding"].to_numpy()[going] == "UCS-2").sum())),
        ("provider", provider or "none (check only)"),
        ("route", prepared.rules.route),
        ("sender", sender or ""),
        ("DLT templates", "checked" if prepared.rules.dlt is not None else "not checked"),
        ("input file", sheet.path.name),
        ("input sha256", sheet.sha256),
        ("worksheet", sheet.name or ""),
        ("phone column", sheet.phone_column),
        ("template", prepared.template.text),
        ("template sha256", hashlib.sha256(prepared.template.text.encode()).hexdigest()),
        ("started at", prepared.started_at.isoformat(timespec="seconds")),
        ("finished at", iso_now(clock)),
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
    balance: int | None = None  # the provider's balance before sending (not in test mode)


@dataclass(frozen=True)
class SendOptions:
    """How to send: everything `send` needs besides the rows, the provider and the callbacks."""

    provider: str = "sandbox"  # its name, recorded in the journal and the Summary
    sender: str | None = None
    chunk_size: int = BULK_LIMIT
    limit: int | None = None
    test: bool = False
    concurrency: int = 4
    rate: float | None = None  # messages per second; None: as fast as the provider answers
    journal: str | Path | None = None  # default: settings.default_journal
    resend_unknown: bool = False
    out: str | Path | None = None  # default: output/<sheet>-results-<time>.xlsx
    receipt_url: str | None = None
    account: str | None = None  # providers.Connection.account: whose sends these are
    repeat_window: timedelta | None = None  # default: settings.default_repeat_window
    clock: Clock = system_clock


def send(
    prepared: Prepared,
    client: Provider,
    options: SendOptions | None = None,
    *,
    before_send: Callable[[Plan], bool] | None = None,
    progress: ProgressCallback | None = None,
    **changes: Any,
) -> BatchResult:
    """Send the prepared ready rows through `client`, journalled, and write the workbook.

    `options` (a SendOptions) says how; keyword `changes` override its fields, so
    `send(prepared, client, sender="ACMEST", limit=10)` reads like a plain call.
    Rerunning the same job (same input file, worksheet, template, sender, provider account,
    test mode) sends only rows never accepted; earlier outcomes are carried into the workbook.
    A row whose exact text went to the same number through the same `account` within
    `repeat_window` (default 7 days, 0 = off), from any other run in the journal, is
    `already_sent` (docs/journal.md). `before_send(plan)` may show the plan and return False
    to cancel (raises `Cancelled`, nothing sent, nothing written). A provider stop (bad key,
    no credits), a journal that cannot be written, or Ctrl-C still writes every row: unsent
    ones are `failed` with the reason. Before anything is sent, a balance below the credits
    needed stops the run (ProviderError, exit 3) unless `test`, and promotional messages
    outside their window are scheduled for its next opening (or, with `rules.schedule` off,
    refused with InputError).
    """
    opts = replace(options or SendOptions(), **changes)
    provider, sender, test, clock = opts.provider, opts.sender, opts.test, opts.clock
    account, limit = opts.account, opts.limit
    rules = prepared.rules
    settings = SendSettings(
        sender=sender,
        chunk_size=opts.chunk_size,
        limit=limit,
        test=test,
        concurrency=opts.concurrency,
        rate=opts.rate,
        window=rules.window,
        schedule=rules.schedule,
        optouts=rules.provider_optouts,
        clock=clock,
        receipt_url=opts.receipt_url,
    )
    window = default_repeat_window() if opts.repeat_window is None else opts.repeat_window
    if window < timedelta(0):
        raise ValueError(f"repeat_window must not be negative, not {window}")
    sheet = prepared.sheet
    out = out_path_for(sheet.path, opts.out, _rule_files(rules))
    journal_path = Path(opts.journal) if opts.journal is not None else default_journal()
    # Before any request leaves: a run that cannot record what it sent must not send.
    check_writable(out, journal_path, expected_bytes=estimate_bytes(len(prepared.results)))
    identity = RunIdentity(
        input_path=str(sheet.path.resolve()),
        worksheet=sheet.name,
        template=prepared.template.text,
        sender=sender,
        route=rules.route,
        provider=provider,
        test=test,
        account=account,
    )
    check_window(rules, clock)
    mode = "test" if test else "send"
    with workbook_lock(out), Journal.open(journal_path) as book:
        run = book.begin_run(identity, sheet.sha256)
        resumed = apply_journal(
            prepared.results, book.entries(run.id), resend_unknown=opts.resend_unknown
        )
        if window > timedelta(0):
            keys = ready_keys(prepared.results)
            priors = book.prior_sends(
                keys.values(),
                account=account,
                test=test,
                since=clock() - window,
                exclude_run=run.id,
            )
            resumed.already_sent = apply_prior_sends(prepared.results, keys, priors, window)
        going = prepared.ready if limit is None else prepared.ready.head(limit)
        credits = prepared.credits(going)
        extra: list[tuple[str, object]] = [
            ("journal", str(book.path)),
            ("journal run", run.id),
            ("settled by earlier runs", resumed.total_skipped),
            ("repeat window", describe_window(window) if window else "off"),
        ]
        try:
            balance = preflight_balance(client, credits, skip=test or going.empty)
        except (ProviderError, TransportError) as exc:  # bad key, too few credits, no network
            # Nothing was sent; still a workbook for every row (exit 3).
            mark(prepared.results, prepared.ready.index.tolist(), "failed", f"not sent: {exc}")
            result = finish(
                prepared,
                out,
                mode=mode,
                provider=provider,
                sender=sender,
                stopped=str(exc),
                balance=None,
                extra=extra,
                clock=clock,
            )
            result.run, result.resumed = run, resumed
            return result
        plan = Plan(run=run, resumed=resumed, going=going, credits=credits, balance=balance)
        if before_send is not None and not before_send(plan):
            raise Cancelled("nothing sent")
        outcome = send_ready(prepared.results, client, book, run.id, settings, progress=progress)
        if outcome.interrupted:
            extra.append(("interrupted", "yes: rerun the same command to send the rest"))
        # Written while the journal and the workbook are still held: a `status` started
        # meanwhile is refused instead of overwriting this file with an older copy.
        result = finish(
            prepared,
            out,
            mode=mode,
            provider=provider,
            sender=sender,
            stopped=outcome.stopped,
            balance=outcome.balance,
            extra=extra,
            clock=clock,
        )
    result.run = run
    result.resumed = resumed
    result.interrupted = outcome.interrupted
    result.attempted = outcome.attempted
    return result


def check_window(rules: Rules, clock: Clock) -> None:
    """With --no-schedule, refuse a promotional run outside its window (exit 2)."""
    if rules.window is None or rules.schedule:
        return
    now = clock()
    if not rules.window.is_open(now):
        opens = rules.window.next_opening(now)
        raise InputError(
            f"promotional messages may only go out {rules.window.describe()} and it is now "
            f"{now.astimezone(IST):%H:%M} IST; rerun after {opens:%Y-%m-%d %H:%M} IST, or drop "
            "--no-schedule to schedule them for then"
        )


def preflight_balance(client: Provider, credits: int, *, skip: bool) -> int | None:
    """The provider's balance, refusing a run it cannot pay for before anything is sent
    (docs/contract.md, "India's rules": no credit spent on a run that cannot finish)."""
    if skip:
        return None
    balance = client.balance()
    if balance < credits:
        raise ProviderError(
            f"insufficient credits: this run needs {credits} credits and the "
            f"balance is {balance}; top up, or send fewer with --limit",
            code=7,
        )
    return balance
