"""`smsbatch reconcile`, `status` and `receipts`: what became of the messages sent."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.options import handle_errors, journal_option, main, provider_options


@main.command()
@provider_options
@journal_option("The journal whose unknown rows to settle.")
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Call a row missing from the history 'not sent' only if attempted at least "
    "this long ago [default: 900 for textlocal, 0 for the sandbox].",
)
@handle_errors
def reconcile(
    provider: str, base_url: str | None, journal_path: Path | None, settle: float | None
) -> None:
    """Settle unknown rows from the provider's own records.

    Rows whose request may or may not have reached the provider become sent (found in its
    history) or failed (not there: a rerun of the same send sends them).
    """
    from pipeline.providers import open_provider
    from pipeline.sending.reconcile import reconcile as settle_unknown

    if settle is None:
        settle = 0.0 if provider == "sandbox" else 900.0
    with open_provider(provider, base_url=base_url) as connection:
        found = settle_unknown(connection.client, journal_path, settle=settle)
    click.echo(
        f"Checked {found.checked} unknown rows in {found.runs} runs against the "
        f"provider's history: {found.sent} sent, {found.failed} not sent, "
        f"{found.still_unknown} still unknown."
    )
    if found.failed:
        click.echo("Rerun the same send command to send the rows that were not sent.")
    if found.still_unknown:
        click.echo(
            f"Rows attempted less than {settle:.0f} s ago stay unknown: the provider's "
            "history may lag; reconcile again later."
        )


@main.command()
@click.argument("results_path", metavar="RESULTS.xlsx", type=click.Path(path_type=Path))
@provider_options
@journal_option("The send journal to update too (skipped if absent).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Status lookups in flight at once.",
)
@handle_errors
def status(
    results_path: Path,
    provider: str,
    base_url: str | None,
    journal_path: Path | None,
    concurrency: int,
) -> None:
    """Pull delivery receipts into a results workbook.

    Asks the provider about every sent or scheduled row whose delivery is not final yet and
    writes delivery_status and delivered_at into the same workbook (replaced atomically).
    """
    from pipeline.cli import console
    from pipeline.providers import open_provider
    from pipeline.report.delivery import update_delivery

    progress = console.Progress()
    with open_provider(provider, base_url=base_url) as connection:
        try:
            report = update_delivery(
                results_path,
                connection.client,
                journal=journal_path,
                concurrency=concurrency,
                progress=progress.advance,
                on_start=progress.start,
            )
        finally:
            progress.stop()
    console.print_delivery(report)


@main.command()
@click.option(
    "--listen",
    "port",
    type=click.IntRange(0, 65535),
    required=True,
    metavar="PORT",
    help="Port to receive Textlocal's receipt callbacks on (0 picks a free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; keep loopback and put an authenticating proxy in front.",
)
@journal_option("The send journal the receipts are recorded in.")
@handle_errors
def receipts(port: int, host: str, journal_path: Path | None) -> None:
    """Receive delivery receipts pushed by Textlocal (push mode).

    Records each receipt (number, status, customID, datetime) against its row in the journal;
    `smsbatch status` then needs to ask only about rows still without one.
    """
    from pipeline.report.receipts import ReceiptListener, record_in_journal
    from pipeline.settings import default_journal

    journal_path = journal_path or default_journal()
    listener = ReceiptListener(record_in_journal(journal_path), host=host, port=port)
    click.echo(
        f"Receiving delivery receipts on {listener.url} (journal {journal_path}); Ctrl-C stops."
    )
    click.echo(
        f"Send with: smsbatch send ... --receipt-url <public URL that forwards to {listener.url}>"
    )
    try:
        listener.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        listener.stop()
