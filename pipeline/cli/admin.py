"""`smsbatch balance`, `sandbox` and `purge`: the account, the rehearsal provider, old data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from pipeline.cli.options import handle_errors, journal_option, main, provider_options

DEFAULT_SANDBOX_PORT = 8787
OUTBOX_DEFAULT_HELP = (
    "[env SMSBATCH_OUTBOX; default: ~/.local/state/smsbatch/sandbox/"
    "outbox.sqlite, or under SMSBATCH_STATE_DIR]"
)


@main.command()
@provider_options
@handle_errors
def balance(provider: str, base_url: str | None) -> None:
    """Show the credits left at the provider."""
    from pipeline.providers import open_provider

    with open_provider(provider, base_url=base_url) as connection:
        credits = connection.client.balance()
    click.echo(f"Balance: {credits} credits ({provider})")


@main.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_SANDBOX_PORT,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--outbox",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help=f"SQLite file recording every accepted message {OUTBOX_DEFAULT_HELP}.",
)
@click.option(
    "--balance",
    "start_balance",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    help="Credits a new outbox starts with.",
)
@click.option(
    "--latency",
    type=click.FloatRange(0, 600),
    default=0.0,
    metavar="SECONDS",
    help="Fault: delay every request by this long.",
)
@click.option(
    "--rate-limit-every",
    type=click.IntRange(min=0),
    default=0,
    metavar="K",
    help="Fault: every K-th send answers HTTP 429 and records nothing.",
)
@click.option(
    "--retry-after",
    type=click.FloatRange(0, 3600),
    default=1.0,
    metavar="SECONDS",
    show_default=True,
    help="Fault: the Retry-After those 429s carry.",
)
@click.option(
    "--error-every",
    type=click.IntRange(min=0),
    default=0,
    metavar="K",
    help="Fault: every K-th send answers HTTP 5xx (--error-status).",
)
@click.option(
    "--error-status",
    type=click.IntRange(500, 599),
    default=500,
    show_default=True,
    help="Fault: the 5xx status to answer with.",
)
@click.option(
    "--error-records",
    is_flag=True,
    help="Fault: record the messages of those 5xx requests before failing.",
)
@click.option(
    "--drop-every",
    type=click.IntRange(min=0),
    default=0,
    metavar="K",
    help="Fault: every K-th send is recorded, then the connection closes unanswered.",
)
@click.option(
    "--hang-every",
    type=click.IntRange(min=0),
    default=0,
    metavar="K",
    help="Fault: every K-th send is recorded, then answered only after --hang-seconds.",
)
@click.option(
    "--hang-seconds",
    type=click.FloatRange(0, 3600),
    default=30.0,
    show_default=True,
    help="Fault: how long those answers hang.",
)
@click.option(
    "--echo-key",
    "echo_key",
    multiple=True,
    metavar="PLACE",
    help="Fault: quote the API key back in PLACE: reason, error, upper, json-key, "
    "json-value or retry-after (repeatable).",
)
@click.option(
    "--promo-window",
    metavar="HH:MM-HH:MM",
    default="10:00-21:00",
    show_default=True,
    help="Hours (IST) a 6-digit promotional sender may send; else error 192.",
)
@click.option(
    "--dlt-template",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Registered DLT templates; other message texts get error 80.",
)
@click.option(
    "--optouts",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Opt-out numbers, skipped when a request sets optouts=true.",
)
@handle_errors
def sandbox(
    port: int,
    outbox: Path | None,
    start_balance: int,
    promo_window: str,
    dlt_template: Path | None,
    optouts: Path | None,
    **faults: Any,
) -> None:
    """Run the sandbox provider in the foreground.

    The sandbox speaks Textlocal's API on 127.0.0.1 and records accepted messages in an
    SQLite outbox; nothing leaves the machine. Fault switches rehearse a slow, throttling or
    failing provider (K counts sending requests; 0 = off).
    """
    from pipeline.sandbox.server import Faults, SandboxServer
    from pipeline.settings import default_outbox
    from pipeline.sms.window import Window

    outbox = outbox or default_outbox()
    chosen = Faults(**faults)
    templates = None
    if dlt_template is not None:
        from pipeline.validate.dlt import load_dlt_templates

        templates = load_dlt_templates(dlt_template)
    opted_out = None
    if optouts is not None:
        from pipeline.validate.suppress import load_suppression

        opted_out = load_suppression([optouts]).numbers
    server = SandboxServer(
        outbox,
        balance=start_balance,
        port=port,
        faults=chosen,
        promo_window=Window.parse(promo_window),
        dlt_templates=templates,
        optouts=opted_out,
    )
    click.echo(f"Sandbox Textlocal API on {server.url} (outbox {outbox}); Ctrl-C stops it.")
    click.echo(f"Faults: {chosen.describe()}")
    click.echo(f"Use it with: smsbatch send SHEET -t TEMPLATE --base-url {server.url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Sandbox stopped.")
    finally:
        server.stop()


@main.command()
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Delete records older than this: a number and m, h, d or w (90m, 12h, 30d, 2w).",
)
@journal_option("The send journal to purge (skipped if the default is absent).")
@click.option(
    "--outbox",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help=f"The sandbox outbox to purge (skipped if the default is absent) {OUTBOX_DEFAULT_HELP}.",
)
@click.option(
    "--yes",
    "-y",
    "assume_yes",
    is_flag=True,
    help="Delete without asking (needed when there is no terminal to ask on).",
)
@handle_errors
def purge(
    older_than: str, journal_path: Path | None, outbox: Path | None, assume_yes: bool
) -> None:
    """Erase journal rows and sandbox messages older than a cutoff.

    India's DPDP Act 2023 asks that personal data be erased once its purpose is served: run
    this when a campaign is over. Journal messages go by their last update, sandbox messages
    by when they were accepted; empty chunks, runs and batches go with them, and the files are
    compacted so the data is gone from disk. Refused while a send holds the journal. A purged
    send is forgotten: rerunning it would send its rows again.
    """
    import sys

    from pipeline.errors import Cancelled, InputError
    from pipeline.purge import parse_age
    from pipeline.purge import purge as erase
    from pipeline.settings import default_journal, default_outbox

    age = parse_age(older_than)
    # A default path that does not exist is simply skipped; a path the user gave must exist.
    given_journal, given_outbox = journal_path is not None, outbox is not None
    journal_path = journal_path or default_journal()
    outbox = outbox or default_outbox()
    journal = journal_path if journal_path.exists() or given_journal else None
    outbox_path = outbox if outbox.exists() or given_outbox else None
    if journal is None and outbox_path is None:
        click.echo(
            f"Nothing to purge: no journal at {journal_path} and no sandbox outbox at {outbox}."
        )
        return

    def confirm(plan: Any) -> bool:
        _print_purge(plan, older_than)
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            raise InputError(
                "purge asks before deleting and there is no terminal to ask on: "
                "rerun with --yes to delete without asking"
            )
        return click.confirm("Delete them?", default=False)

    try:
        report = erase(age, journal=journal, outbox=outbox_path, confirm=confirm)
    except Cancelled:
        click.echo("Nothing deleted.")
        sys.exit(1)
    if not report.done:
        click.echo(f"Nothing older than {older_than} (before {_when(report.cutoff)}) to purge.")
        return
    counts = report.counts
    parts = []
    if report.journal is not None:
        parts.append(f"journal: {_journal_counts(counts)}")
    if report.outbox is not None:
        parts.append(f"sandbox outbox: {_outbox_counts(counts)}")
    click.echo(f"Deleted from the {'; '.join(parts)}.")
    if report.scrubbed:
        click.echo("The files were compacted: the deleted records are gone from disk.")
    else:
        click.echo(
            f"A running sandbox holds {report.outbox} open, so deleted messages may "
            "linger in its -wal file: stop the sandbox and run the same purge again.",
            err=True,
        )


def _when(moment: datetime) -> str:
    """A time in local time, to the minute, with its offset."""
    return moment.astimezone().isoformat(sep=" ", timespec="minutes")


def _journal_counts(counts: Any) -> str:
    return (
        f"{counts.journal_messages} messages, {counts.journal_chunks} chunks, "
        f"{counts.journal_runs} runs"
    )


def _outbox_counts(counts: Any) -> str:
    return f"{counts.outbox_messages} messages, {counts.outbox_batches} batches"


def _print_purge(plan: Any, older_than: str) -> None:
    """What a purge is about to delete."""
    counts = plan.counts
    click.echo(f"Records older than {older_than} (last changed before {_when(plan.cutoff)}):")
    if plan.journal is not None:
        click.echo(f"  journal {plan.journal}: {_journal_counts(counts)}")
    if plan.outbox is not None:
        click.echo(f"  sandbox outbox {plan.outbox}: {_outbox_counts(counts)}")
    if counts.journal_messages:
        click.echo(
            "Rerunning a purged send would send its rows again: the journal forgets they went."
        )
