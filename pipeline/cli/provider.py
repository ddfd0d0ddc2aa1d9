"""The commands around a job: reconcile, balance and the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline.cli import handle_errors, main, provider_options

DEFAULT_SANDBOX_PORT = 8787


@main.command()
@provider_options
@click.option("--journal", "journal_path", type=click.Path(path_type=Path), metavar="PATH",
              default=Path("output/journal.sqlite"), show_default=True,
              help="The journal whose unknown rows to settle.")
@click.option("--settle", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Call a row missing from the history 'not sent' only if attempted at least "
              "this long ago [default: 900 for textlocal, 0 for the sandbox].")
@handle_errors
def reconcile(provider: str, base_url: str | None, journal_path: Path,
              settle: float | None) -> None:
    """Settle unknown rows from the provider's own records.

    Rows whose request may or may not have reached the provider become sent (found in its
    history) or failed (not there: a rerun of the same send sends them).
    """
    from pipeline.providers import open_provider
    from pipeline.reconcile import reconcile as settle_unknown

    if settle is None:
        settle = 0.0 if provider == "sandbox" else 900.0
    with open_provider(provider, base_url=base_url) as connection:
        found = settle_unknown(connection.client, journal_path, settle=settle)
    click.echo(f"Checked {found.checked} unknown rows in {found.runs} runs against the "
               f"provider's history: {found.sent} sent, {found.failed} not sent, "
               f"{found.still_unknown} still unknown.")
    if found.failed:
        click.echo("Rerun the same send command to send the rows that were not sent.")
    if found.still_unknown:
        click.echo(f"Rows attempted less than {settle:.0f} s ago stay unknown: the provider's "
                   "history may lag; reconcile again later.")


@main.command()
@click.argument("results_path", metavar="RESULTS.xlsx", type=click.Path(path_type=Path))
@provider_options
@click.option("--journal", "journal_path", type=click.Path(path_type=Path), metavar="PATH",
              default=Path("output/journal.sqlite"), show_default=True,
              help="The send journal to update too (skipped if absent or in use).")
@click.option("--concurrency", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Status lookups in flight at once.")
@handle_errors
def status(results_path: Path, provider: str, base_url: str | None, journal_path: Path,
           concurrency: int) -> None:
    """Pull delivery receipts into a results workbook.

    Asks the provider about every sent or scheduled row whose delivery is not final yet and
    writes delivery_status and delivered_at into the same workbook (replaced atomically).
    """
    from pipeline import console
    from pipeline.delivery import update_delivery
    from pipeline.providers import open_provider

    progress = console.Progress()
    with open_provider(provider, base_url=base_url) as connection:
        try:
            report = update_delivery(results_path, connection.client, journal=journal_path,
                                     concurrency=concurrency, progress=progress.advance,
                                     on_start=progress.start)
        finally:
            progress.stop()
    console.print_delivery(report)


@main.command()
@click.option("--listen", "port", type=click.IntRange(0, 65535), required=True, metavar="PORT",
              help="Port to receive Textlocal's receipt callbacks on (0 picks a free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; keep loopback and put an authenticating proxy in front.")
@click.option("--journal", "journal_path", type=click.Path(path_type=Path), metavar="PATH",
              default=Path("output/journal.sqlite"), show_default=True,
              help="The send journal the receipts are recorded in.")
@handle_errors
def receipts(port: int, host: str, journal_path: Path) -> None:
    """Receive delivery receipts pushed by Textlocal (push mode).

    Records each receipt (number, status, customID, datetime) against its row in the journal;
    `smsbatch status` then needs to ask only about rows still without one.
    """
    from pipeline.receipts import ReceiptListener, record_in_journal

    listener = ReceiptListener(record_in_journal(journal_path), host=host, port=port)
    click.echo(f"Receiving delivery receipts on {listener.url} (journal {journal_path}); "
               "Ctrl-C stops.")
    click.echo(f"Send with: smsbatch send ... --receipt-url <public URL that forwards to "
               f"{listener.url}>")
    try:
        listener.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        listener.stop()


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
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_SANDBOX_PORT,
              show_default=True, help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--outbox", type=click.Path(path_type=Path), metavar="PATH",
              default=Path("output/sandbox/outbox.sqlite"), show_default=True,
              help="SQLite file recording every accepted message.")
@click.option("--balance", "start_balance", type=click.IntRange(min=0), default=10_000,
              show_default=True, help="Credits a new outbox starts with.")
@click.option("--latency", type=click.FloatRange(0, 600), default=0.0, metavar="SECONDS",
              help="Fault: delay every request by this long.")
@click.option("--rate-limit-every", type=click.IntRange(min=0), default=0, metavar="K",
              help="Fault: every K-th send answers HTTP 429 and records nothing.")
@click.option("--retry-after", type=click.FloatRange(0, 3600), default=1.0, metavar="SECONDS",
              show_default=True, help="Fault: the Retry-After those 429s carry.")
@click.option("--error-every", type=click.IntRange(min=0), default=0, metavar="K",
              help="Fault: every K-th send answers HTTP 5xx (--error-status).")
@click.option("--error-status", type=click.IntRange(500, 599), default=500, show_default=True,
              help="Fault: the 5xx status to answer with.")
@click.option("--error-records", is_flag=True,
              help="Fault: record the messages of those 5xx requests before failing.")
@click.option("--drop-every", type=click.IntRange(min=0), default=0, metavar="K",
              help="Fault: every K-th send is recorded, then the connection closes unanswered.")
@click.option("--hang-every", type=click.IntRange(min=0), default=0, metavar="K",
              help="Fault: every K-th send is recorded, then answered only after "
              "--hang-seconds.")
@click.option("--hang-seconds", type=click.FloatRange(0, 3600), default=30.0,
              show_default=True, help="Fault: how long those answers hang.")
@click.option("--promo-window", metavar="HH:MM-HH:MM", default="10:00-21:00",
              show_default=True,
              help="Hours (IST) a 6-digit promotional sender may send; else error 192.")
@click.option("--dlt-template", metavar="FILE", type=click.Path(path_type=Path),
              help="Registered DLT templates; other message texts get error 80.")
@click.option("--optouts", metavar="FILE", type=click.Path(path_type=Path),
              help="Opt-out numbers, skipped when a request sets optouts=true.")
@handle_errors
def sandbox(port: int, outbox: Path, start_balance: int, promo_window: str,
            dlt_template: Path | None, optouts: Path | None, **faults: Any) -> None:
    """Run the sandbox provider in the foreground.

    The sandbox speaks Textlocal's API on 127.0.0.1 and records accepted messages in an
    SQLite outbox; nothing leaves the machine. Fault switches rehearse a slow, throttling or
    failing provider (K counts sending requests; 0 = off).
    """
    from pipeline.providers.sandbox import Faults, SandboxServer
    from pipeline.window import Window

    chosen = Faults(**faults)
    templates = None
    if dlt_template is not None:
        from pipeline.dlt import load_dlt_templates

        templates = load_dlt_templates(dlt_template)
    opted_out = None
    if optouts is not None:
        from pipeline.suppress import load_suppression

        opted_out = load_suppression([optouts]).numbers
    server = SandboxServer(outbox, balance=start_balance, port=port, faults=chosen,
                           promo_window=Window.parse(promo_window), dlt_templates=templates,
                           optouts=opted_out)
    click.echo(f"Sandbox Textlocal API on {server.url} (outbox {outbox}); Ctrl-C stops it.")
    click.echo(f"Faults: {chosen.describe()}")
    click.echo(f"Use it with: smsbatch send SHEET -t TEMPLATE --base-url {server.url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Sandbox stopped.")
    finally:
        server.stop()
