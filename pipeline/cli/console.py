"""What the command line prints: plans, progress, summaries. Numbers are always masked."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import click

# Statuses always shown in the terminal summary; the others only when they occur.
ALWAYS_SHOWN = {
    "check": ("ready", "invalid_number", "duplicate", "missing_field"),
    "send": ("sent", "invalid_number", "duplicate", "missing_field"),
}
LABELS = {"invalid_number": "invalid", "duplicate": "duplicates", "missing_field": "missing"}


class Progress:
    """A rich progress bar on a terminal (stderr); silent otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None

    def start(self, total: int) -> None:
        """Show the bar for `total` messages (only on a terminal)."""
        if not sys.stderr.isatty() or total == 0:
            return
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(console=Console(stderr=True), transient=True)
        self.bar.start()
        self.task = self.bar.add_task("sending", total=total)

    def advance(self, count: int) -> None:
        """Count `count` more messages as done."""
        if self.bar is not None:
            self.bar.advance(self.task, count)

    def stop(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def print_warnings(warnings: list[str]) -> None:
    """Each warning once, on stderr."""
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def print_plan(plan: Any) -> None:
    """Say what earlier runs settled and what this run will do."""
    resumed = plan.resumed
    if plan.run.previous_input_sha256:
        click.echo(
            "warning: the input file changed since the last run of this job; rows are "
            "matched by number and message, so those already sent are not sent again",
            err=True,
        )
    if resumed.total_skipped:
        parts = ", ".join(f"{n} {status}" for status, n in sorted(resumed.skipped.items()))
        click.echo(
            f"Resuming run {plan.run.id} of {plan.run.created_at}: not sending again "
            f"{parts} (settled by earlier runs)."
        )
    if resumed.skipped.get("unknown"):
        click.echo(
            f"{resumed.skipped['unknown']} rows are unknown (may have been sent): "
            "`smsbatch reconcile` asks the provider; --resend-unknown sends them again."
        )
    if resumed.resending_unknown:
        click.echo(
            f"warning: resending {resumed.resending_unknown} rows whose earlier outcome "
            "is unknown: these numbers may get the message twice",
            err=True,
        )
    if resumed.already_sent:
        click.echo(
            f"Not sending {resumed.already_sent} rows already_sent: the same text went "
            "to those numbers through this account within the repeat window, from "
            "another file, folder or run (`detail` says which; --repeat-window 0 sends "
            "them anyway)."
        )
    if plan.going.empty and not plan.run.new:
        click.echo("Nothing to send: every row of this job was settled by earlier runs.")
    elif plan.going.empty and resumed.already_sent:
        click.echo("Nothing to send: every sendable row was already sent by another run.")
    elif plan.balance is not None:
        click.echo(
            f"Sending {len(plan.going)} messages: {plan.credits} credits of the "
            f"{plan.balance} left."
        )


def print_confirmation_request(plan: Any, sender: str | None) -> None:
    """The facts a person needs before a real send: count, credits, sender, first message."""
    from pipeline.sms import phones

    first = plan.going.iloc[0]
    click.echo(
        f"About to send {len(plan.going)} messages costing {plan.credits} credits "
        f"from sender {sender}."
    )
    click.echo(f"First message, to {phones.mask(first['phone_e164'])}:")
    click.echo(f"  {first['message']}")


def print_summary(result: Any, mode: str) -> None:
    """A short table of counts, then the path of the results workbook."""
    counts = result.counts
    summary = dict(result.summary)
    shown = ALWAYS_SHOWN[mode]
    lines = [("rows", len(result.results))]
    lines += [(LABELS.get(s, s), counts[s]) for s in shown]
    lines += [(LABELS.get(s, s), n) for s, n in counts.items() if n and s not in shown]
    lines += [
        ("messages", summary["messages"]),
        ("unicode", summary["unicode messages"]),
        ("segments", summary["segments"]),
        ("credits", summary["credits"]),
    ]
    if result.balance is not None:
        lines.append(("balance", result.balance))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        click.echo(f"{label:<{width}}  {value:>7}")
    click.echo(f"Results: {result.out_path}")


def print_delivery(report: Any) -> None:
    """What `status` learned, then the workbook it updated."""
    click.echo(
        f"Asked the provider about {report.asked} messages ({report.already_final} already final)."
    )
    for status, count in report.by_status.items():
        if count:
            click.echo(f"{status:<12} {count:>7}")
    if report.rate is not None:
        click.echo(f"delivery rate {report.rate:.1%}")
    if report.failed_lookups:
        click.echo(f"{report.failed_lookups} lookups failed; run `smsbatch status` again later.")
    click.echo(f"Updated: {report.path}")


def resume_command() -> str:
    """The exact command line that resumes this run."""
    return shlex.join(["smsbatch", *sys.argv[1:]])
