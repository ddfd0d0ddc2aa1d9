"""`smsbatch check` and `smsbatch send`: run a job over a contact sheet."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.cli.options import handle_errors, journal_option, main, provider_options

SANDBOX_SENDER = "TXTLCL"  # Textlocal's historical default header; the sandbox accepts it


def sheet_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `check` and `send`."""
    options = [
        click.argument(
            "sheet_path", metavar="SHEET", type=click.Path(path_type=Path, dir_okay=True)
        ),
        click.option(
            "-t",
            "--template",
            "template_path",
            required=True,
            metavar="FILE",
            type=click.Path(path_type=Path),
            help="Message template (UTF-8 text) with {Column Header} placeholders.",
        ),
        click.option(
            "--sheet",
            "sheet_name",
            metavar="NAME",
            help="Worksheet to read [default: the first with a phone column].",
        ),
        click.option(
            "--phone-column",
            metavar="NAME",
            help="Column holding the numbers [default: detected from the headers].",
        ),
        # As typed (str): a trailing "/" or "./" means something to the --out checks.
        click.option(
            "--out",
            metavar="PATH",
            type=click.Path(),
            help="Results workbook (.xlsx; a folder gets the default name inside it) "
            "[default: output/<sheet>-results-<YYYYmmdd-HHMMSS>.xlsx].",
        ),
        click.option(
            "--route",
            type=click.Choice(["transactional", "service", "promotional"]),
            default="service",
            show_default=True,
            help="DLT route: sender shape, time window and opt-out rules.",
        ),
        click.option(
            "--dlt-template",
            metavar="FILE",
            type=click.Path(path_type=Path),
            help="Registered DLT templates (.txt one per line, or .csv id,category,"
            "text); every message must match one exactly.",
        ),
        click.option(
            "--dlt-var-max",
            type=click.IntRange(1, 500),
            metavar="N",
            help="Most characters one {#var#} may hold [default: 30].",
        ),
        click.option(
            "--suppress",
            metavar="FILE",
            type=click.Path(path_type=Path),
            multiple=True,
            help="Opt-out / DND numbers (.txt, .csv or .xlsx; repeatable): opted_out.",
        ),
        click.option(
            "--gsm-only",
            is_flag=True,
            help="Replace look-alikes (curly quotes, dashes, NBSP, ...) with GSM-7 "
            "characters so messages are not sent as Unicode.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@sheet_options
@handle_errors
def check(
    sheet_path: Path,
    template_path: Path,
    sheet_name: str | None,
    phone_column: str | None,
    out: str | Path | None,
    **rule_options: Any,
) -> None:
    """Validate and merge only; no network.

    Writes the results workbook with a status for every row: ready, invalid_number,
    duplicate, missing_field, opted_out, template_mismatch or rejected (too long).
    """
    from pipeline import job as batch
    from pipeline.cli import console
    from pipeline.validate.rules import load_rules

    if out is not None:  # checked before anything is read; the default needs no check
        out = batch.out_path_for(sheet_path, out, [template_path, *_rule_paths(rule_options)])
    rules = load_rules(**rule_options)
    result = batch.check(
        sheet_path, template_path, sheet=sheet_name, phone_column=phone_column, rules=rules, out=out
    )
    console.print_warnings(result.prepared.warnings)
    console.print_summary(result, mode="check")


@main.command()
@sheet_options
@provider_options
@click.option(
    "--sender",
    metavar="ID",
    envvar="TEXTLOCAL_SENDER",
    help=f"6-letter DLT sender ID [env TEXTLOCAL_SENDER; sandbox: {SANDBOX_SENDER}].",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1, 500),
    default=500,
    show_default=True,
    help="Messages per provider request (Textlocal bulk limit: 500).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), metavar="N", help="Send at most N messages this run."
)
@click.option(
    "--test",
    "test_mode",
    is_flag=True,
    help="Provider test mode: validated, nothing delivered, no credits used.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    metavar="N",
    help="Send at most N messages per second [default: no cap].",
)
@journal_option("SQLite journal of what was sent, shared by every run and folder.")
@click.option(
    "--repeat-window",
    metavar="DURATION",
    help="Do not send a text a number already got through this account within this "
    "long (e.g. 7d, 12h; 0 = off) [env SMSBATCH_REPEAT_WINDOW; default: 7d].",
)
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Also resend rows whose earlier outcome is unknown (may duplicate).",
)
@click.option(
    "--promo-window", metavar="HH:MM-HH:MM", help="Promotional hours in IST [default: 10:00-21:00]."
)
@click.option(
    "--no-schedule",
    is_flag=True,
    help="Promotional, outside the window: refuse to start instead of scheduling "
    "the messages for the next opening.",
)
@click.option(
    "--receipt-url",
    metavar="URL",
    help="Where Textlocal should POST delivery receipts (see `smsbatch receipts`).",
)
@click.option(
    "--provider-optouts",
    is_flag=True,
    help="Ask Textlocal to skip numbers on its own and your account's opt-out lists.",
)
@click.option(
    "--yes",
    "-y",
    "assume_yes",
    is_flag=True,
    help="Skip the confirmation prompt before a real (textlocal) send.",
)
@handle_errors
def send(
    sheet_path: Path,
    template_path: Path,
    sheet_name: str | None,
    phone_column: str | None,
    out: str | Path | None,
    provider: str,
    base_url: str | None,
    sender: str | None,
    chunk_size: int,
    limit: int | None,
    test_mode: bool,
    concurrency: int,
    rate: float | None,
    journal_path: Path | None,
    repeat_window: str | None,
    resend_unknown: bool,
    assume_yes: bool,
    receipt_url: str | None,
    **rule_options: Any,
) -> None:
    """Validate, merge and send the messages.

    Sends through the built-in sandbox unless --provider textlocal; a real send asks for
    confirmation first. Rerunning the same command resumes: only rows never accepted are
    sent. A text that already went to a number through the same account within the repeat
    window, from any file or folder, is not sent again (already_sent). Writes the results
    workbook with a status for every row.
    """
    from pipeline import job as batch
    from pipeline.cli import console
    from pipeline.errors import Cancelled
    from pipeline.providers import open_provider
    from pipeline.settings import default_repeat_window, parse_duration
    from pipeline.validate.rules import load_rules

    if out is not None:  # checked before anything is read; the default needs no check
        out = batch.out_path_for(sheet_path, out, [template_path, *_rule_paths(rule_options)])
    window = (
        parse_duration(repeat_window, "--repeat-window", allow_zero=True)
        if repeat_window is not None
        else default_repeat_window()
    )
    rule_options["schedule"] = not rule_options.pop("no_schedule")
    sender = resolve_sender(sender, provider, rule_options["route"])
    rules = load_rules(**rule_options)
    prepared = batch.load(
        sheet_path, template_path, sheet=sheet_name, phone_column=phone_column, rules=rules
    )
    console.print_warnings(prepared.warnings)
    if journal_path is None:
        warn_about_an_old_journal()
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
            options = batch.SendOptions(
                provider=provider,
                sender=sender,
                chunk_size=chunk_size,
                limit=limit,
                test=test_mode,
                concurrency=concurrency,
                rate=rate,
                journal=journal_path,
                resend_unknown=resend_unknown,
                out=out,
                receipt_url=receipt_url,
                account=connection.account,
                repeat_window=window,
            )
            result = batch.send(
                prepared,
                connection.client,
                options,
                before_send=before_send,
                progress=progress.advance,
            )
        except Cancelled:
            click.echo("Nothing sent.")
            sys.exit(1)
        finally:
            progress.stop()
    console.print_summary(result, mode="send")
    if result.interrupted:
        click.echo(
            "Interrupted: messages in flight were recorded; nothing more was sent. "
            f"To send the rest, run: {console.resume_command()}",
            err=True,
        )
        sys.exit(130)
    if result.stopped:
        click.echo(f"error: {result.stopped}", err=True)
        sys.exit(3)


OLD_DEFAULT_JOURNAL = Path("output") / "journal.sqlite"  # before the journal was one per user


def warn_about_an_old_journal() -> None:
    """One line when this folder still has a journal from before the per-user one: its sends
    are not known to the new journal unless the user points at it."""
    from pipeline.settings import default_journal

    new = default_journal()
    if OLD_DEFAULT_JOURNAL.is_file() and not (new.exists() and OLD_DEFAULT_JOURNAL.samefile(new)):
        click.echo(
            f"warning: {OLD_DEFAULT_JOURNAL} is a journal from an earlier smsbatch; this "
            f"send uses {new} and does not know what that one sent: to keep its "
            f"memory, move it to {new} (if none is there yet) or pass "
            f"--journal {OLD_DEFAULT_JOURNAL}",
            err=True,
        )


def _rule_paths(rule_options: dict[str, Any]) -> list[Path]:
    """The input files named by the compliance options (never a valid --out)."""
    dlt = rule_options.get("dlt_template")
    return [*([dlt] if dlt is not None else []), *rule_options.get("suppress", ())]


def resolve_sender(sender: str | None, provider: str, route: str) -> str:
    """The sender ID to use, checked for the DLT header shape of the route."""
    from pipeline.errors import InputError
    from pipeline.validate.rules import check_sender

    if not sender:
        if provider == "sandbox" and route != "promotional":
            return SANDBOX_SENDER
        wanted = "6-digit promotional" if route == "promotional" else "6-letter"
        raise InputError(
            f"no sender ID: pass --sender or set TEXTLOCAL_SENDER to your "
            f"DLT-approved {wanted} header"
        )
    return check_sender(sender, route)
