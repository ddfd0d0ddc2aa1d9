"""The `smsbatch` group, its error handling and the options several commands share."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


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
    from pipeline.cli import logs

    # Numbers and the key masked in every log line (docs/contract.md, "Secrets and privacy").
    logs.configure(verbose)


def provider_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--provider and --base-url, for the commands that talk to a provider."""
    func = click.option(
        "--base-url",
        metavar="URL",
        help="Provider API base URL [textlocal: env TEXTLOCAL_BASE_URL, else "
        "https://api.textlocal.in/; sandbox: a running `smsbatch sandbox`].",
    )(func)
    return click.option(
        "--provider",
        type=click.Choice(["sandbox", "textlocal"]),
        default="sandbox",
        show_default=True,
        help="Where messages go / whom to ask; real SMS only with textlocal.",
    )(func)


JOURNAL_DEFAULT_HELP = (
    "[env SMSBATCH_JOURNAL; default: ~/.local/state/smsbatch/journal.sqlite, "
    "or under SMSBATCH_STATE_DIR]"
)


def journal_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--journal PATH; None when not given (the library then uses the user's journal)."""
    return click.option(
        "--journal",
        "journal_path",
        type=click.Path(path_type=Path),
        metavar="PATH",
        help=f"{help_text} {JOURNAL_DEFAULT_HELP}.",
    )
