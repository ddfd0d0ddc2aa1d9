"""The `smsbatch` command line: parse options, call the library, print, set the exit code.

Heavy libraries (pandas, pandera, requests) are imported inside the commands so that
`smsbatch --help` stays fast.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

SANDBOX_SENDER = "TXTLCL"  # Textlocal's historical default header; the sandbox accepts it
DEFAULT_SANDBOX_PORT = 8787


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn SmsBatchError into one line on stderr and its exit code (traceback with -v)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipeline.errors import SmsBatchError

        try:
            return func(*args, **kwargs)
        except SmsBatchError as exc:
            if click.get_current_context().find_root().params.get("verbose"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug details and show tracebacks.")
@click.version_option(package_name="smsbatch")
def main(verbose: bool) -> None:
    """Send personalised SMS in bulk from an Excel or CSV contact sheet (Textlocal, India)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def sheet_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `check` and `send`."""
    options = [
        click.argument("sheet_path", metavar="SHEET",
                       type=click.Path(path_type=Path, dir_okay=True)),
        click.option("-t", "--template", "template_path", required=True, metavar="FILE",
                     type=click.Path(path_type=Path),
                     help="Message template (UTF-8 text) with {Column Header} placeholders."),
        click.option("--sheet", "sheet_name", metavar="NAME",
                     help="Worksheet to read [default: the first with a phone column]."),
        click.option("--phone-column", metavar="NAME",
                     help="Column holding the numbers [default: detected from the headers]."),
        click.option("--out", metavar="PATH", type=click.Path(path_type=Path),
                     help="Results workbook "
                     "[default: output/<sheet>-results-<YYYYmmdd-HHMMSS>.xlsx]."),
        click.option("--route", type=click.Choice(["transactional", "service", "promotional"]),
                     default="service", show_default=True,
                     help="DLT route: sender shape, time window and opt-out rules."),
        click.option("--dlt-template", metavar="FILE", type=click.Path(path_type=Path),
                     help="Registered DLT templates (.txt one per line, or .csv id,category,"
                     "text); every message must match one exactly."),
        click.option("--dlt-var-max", type=click.IntRange(1, 500), metavar="N",
                     help="Most characters one {#var#} may hold [default: 30]."),
        click.option("--suppress", metavar="FILE", type=click.Path(path_type=Path),
                     multiple=True,
                     help="Opt-out / DND numbers (.txt, .csv or .xlsx; repeatable): opted_out."),
        click.option("--gsm-only", is_flag=True,
                     help="Replace look-alikes (curly quotes, dashes, NBSP, ...) with GSM-7 "
                     "characters so messages are not sent as Unicode."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@sheet_options
@handle_errors
def check(sheet_path: Path, template_path: Path, sheet_name: str | None,
          phone_column: str | None, out: Path | None, **rule_options: Any) -> None:
    """Validate and merge only; no network.

    Writes the results workbook with a status for every row: ready, invalid_number,
    duplicate, missing_field, opted_out, template_mismatch or rejected (too long).
    """
    from pipeline import batch, console
    from pipeline.compliance import load_rules

    rules = load_rules(**rule_options)
    result = batch.check(sheet_path, template_path, sheet=sheet_name,
                         phone_column=phone_column, rules=rules, out=out)
    console.print_warnings(result.prepared.warnings)
    console.print_summary(result, mode="check")


@main.command()
@sheet_options
@click.option("--provider", type=click.Choice(["sandbox", "textlocal"]), default="sandbox",
              show_default=True, help="Where messages go; real SMS only with textlocal.")
@click.option("--base-url", metavar="URL",
              help="Provider API base URL [textlocal: env TEXTLOCAL_BASE_URL, else "
              "https://api.textlocal.in/; sandbox: a running `smsbatch sandbox`].")
@click.option("--sender", metavar="ID", envvar="TEXTLOCAL_SENDER",
              help=f"6-letter DLT sender ID [env TEXTLOCAL_SENDER; sandbox: {SANDBOX_SENDER}].")
@click.option("--chunk-size", type=click.IntRange(1, 500), default=500, show_default=True,
              help="Messages per provider request (Textlocal bulk limit: 500).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Send at most N messages this run.")
@click.option("--test", "test_mode", is_flag=True,
              help="Provider test mode: validated, nothing delivered, no credits used.")
@click.option("--concurrency", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Requests in flight at once.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), metavar="N",
              help="Send at most N messages per second [default: no cap].")
@click.option("--journal", "journal_path", type=click.Path(path_type=Path), metavar="PATH",
              default=Path("output/journal.sqlite"), show_default=True,
              help="SQLite journal that makes reruns resume instead of resending.")
@click.option("--resend-unknown", is_flag=True,
              help="Also resend rows whose earlier outcome is unknown (may duplicate).")
@click.option("--promo-window", metavar="HH:MM-HH:MM",
              help="Promotional hours in IST [default: 10:00-21:00].")
@click.option("--no-schedule", is_flag=True,
              help="Promotional, outside the window: refuse to start instead of scheduling "
              "the messages for the next opening.")
@click.option("--provider-optouts", is_flag=True,
              help="Ask Textlocal to skip numbers on its own and your account's opt-out lists.")
@click.option("--yes", "-y", "assume_yes", is_flag=True,
              help="Skip the confirmation prompt before a real (textlocal) send.")
@handle_errors
def send(sheet_path: Path, template_path: Path, sheet_name: str | None,
         phone_column: str | None, out: Path | None, provider: str, base_url: str | None,
         sender: str | None, chunk_size: int, limit: int | None, test_mode: bool,
         concurrency: int, rate: float | None, journal_path: Path, resend_unknown: bool,
         assume_yes: bool, **rule_options: Any) -> None:
    """Validate, merge and send the messages.

    Sends through the built-in sandbox unless --provider textlocal; a real send asks for
    confirmation first. Rerunning the same command resumes: only rows never accepted are
    sent. Writes the results workbook with a status for every row.
    """
    from pipeline import batch, console
    from pipeline.compliance import load_rules
    from pipeline.errors import Cancelled
    from pipeline.providers import open_provider

    rule_options["schedule"] = not rule_options.pop("no_schedule")
    sender = resolve_sender(sender, provider, rule_options["route"])
    rules = load_rules(**rule_options)
    prepared = batch.load(sheet_path, template_path, sheet=sheet_name,
                          phone_column=phone_column, rules=rules)
    console.print_warnings(prepared.warnings)
    progress = console.Progress()

    def before_send(plan: batch.Plan) -> bool:
        console.print_plan(plan)
        if provider == "textlocal" and not (assume_yes or test_mode) and not plan.going.empty:
            console.print_confirmation_request(plan, sender)
            if not click.confirm("Send now?", default=False):
                return False
        progress.start(len(plan.going))
        return True

    with open_provider(provider, base_url=base_url) as connection:
        click.echo(f"Provider: {connection.description}")
        try:
            result = batch.send(prepared, connection.client, provider=provider, sender=sender,
                                chunk_size=chunk_size, limit=limit, test=test_mode,
                                concurrency=concurrency, rate=rate, journal=journal_path,
                                resend_unknown=resend_unknown, out=out,
                                before_send=before_send, progress=progress.advance)
        except Cancelled:
            click.echo("Nothing sent.")
            sys.exit(1)
        finally:
            progress.stop()
    console.print_summary(result, mode="send")
    if result.interrupted:
        click.echo("Interrupted: messages in flight were recorded; nothing more was sent. "
                   f"To send the rest, run: {console.resume_command()}", err=True)
        sys.exit(130)
    if result.stopped:
        click.echo(f"error: {result.stopped}", err=True)
        sys.exit(3)


@main.command()
@click.option("--provider", type=click.Choice(["sandbox", "textlocal"]), default="sandbox",
              show_default=True, help="Which provider's history to ask.")
@click.option("--base-url", metavar="URL",
              help="Provider API base URL [textlocal: env TEXTLOCAL_BASE_URL].")
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
@click.option("--provider", type=click.Choice(["sandbox", "textlocal"]), default="sandbox",
              show_default=True, help="Which provider to ask.")
@click.option("--base-url", metavar="URL",
              help="Provider API base URL [env TEXTLOCAL_BASE_URL].")
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


def resolve_sender(sender: str | None, provider: str, route: str) -> str:
    """The sender ID to use, checked for the DLT header shape of the route."""
    from pipeline.compliance import check_sender
    from pipeline.errors import InputError

    if not sender:
        if provider == "sandbox" and route != "promotional":
            return SANDBOX_SENDER
        wanted = "6-digit promotional" if route == "promotional" else "6-letter"
        raise InputError(f"no sender ID: pass --sender or set TEXTLOCAL_SENDER to your "
                         f"DLT-approved {wanted} header")
    return check_sender(sender, route)
