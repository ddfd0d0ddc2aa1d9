"""India's SMS rules, checked before a credit is spent (docs/contract.md, "India's rules").

The facts behind them are in docs/provider-api.md ("Message length, encoding and credits",
"DLT templates and headers", "Promotional hours", "DND and opt-outs"). Routes and sender IDs,
registered DLT templates, opt-out lists, the promotional time window and the provider's
length limit become per-row statuses or one clear error at the start of `check` and `send`,
instead of a Textlocal error code (or a bill) after the fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import InputError

if TYPE_CHECKING:
    from pipeline.sms.window import Window
    from pipeline.validate.dlt.matcher import DltMatcher
    from pipeline.validate.suppress import Suppression

ROUTES = ("transactional", "service", "promotional")
DEFAULT_ROUTE = "service"
# DLT headers (docs/provider-api.md, "DLT templates and headers"): promotional = 6 digits, the
# others 6 letters, case as registered. Operators append -P/-S/-T themselves; the header sent
# is the registered one.
SENDER_PATTERNS = {
    "promotional": re.compile(r"\d{6}"),
    "transactional": re.compile(r"[A-Za-z]{6}"),
    "service": re.compile(r"[A-Za-z]{6}"),
}
# Words that tell a promotional reader how to stop further messages (docs/provider-api.md,
# "DND and opt-outs": not a verified legal text, so a missing one is a warning, not an error).
OPT_OUT_HINT = re.compile(r"\b(stop|opt[- ]?out|unsubscribe|1909)\b", re.IGNORECASE)
NO_DLT_WARNING = (
    "no --dlt-template given: operators will scrub messages that do not match "
    "a template registered on DLT; pass your registered templates to check them "
    "here first"
)


@dataclass(frozen=True)
class Rules:
    """The compliance options of a run; the defaults check nothing beyond the sender shape."""

    route: str = DEFAULT_ROUTE
    dlt: DltMatcher | None = None
    suppression: Suppression | None = None
    gsm_only: bool = False
    window: Window | None = None  # the promotional window (promotional route only)
    schedule: bool = True  # outside the window: schedule for its next opening, else refuse
    provider_optouts: bool = False  # ask Textlocal to skip its own opt-out lists too
    suppress_names: tuple[str, ...] = field(default_factory=tuple)
    sources: tuple[Path, ...] = field(default_factory=tuple)  # files read: never an --out

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise InputError(f"unknown route {self.route!r}: use one of {', '.join(ROUTES)}")

    @property
    def promotional(self) -> bool:
        """Whether the time window and DND rules apply."""
        return self.route == "promotional"


def check_sender(sender: str, route: str) -> str:
    """The sender ID if it has the shape DLT gives this route, else InputError (exit 2)."""
    if SENDER_PATTERNS[route].fullmatch(sender):
        return sender
    wanted = (
        "6 digits (a promotional DLT header)"
        if route == "promotional"
        else "6 letters (your DLT header, case as registered)"
    )
    raise InputError(
        f"sender {sender!r} does not fit the {route} route: it must be {wanted}; "
        "fix --sender / TEXTLOCAL_SENDER or --route"
    )


def template_warnings(template_text: str, rules: Rules, *, checking: bool) -> list[str]:
    """Once-per-run warnings about the template itself."""
    warnings = []
    if checking and rules.dlt is None:
        warnings.append(NO_DLT_WARNING)
    if rules.promotional and not OPT_OUT_HINT.search(template_text):
        warnings.append(
            'the promotional template has no opt-out instruction (e.g. "Reply '
            'STOP to opt out"); add one so readers can stop further messages'
        )
    return warnings


def load_rules(
    *,
    route: str = DEFAULT_ROUTE,
    dlt_template: str | Path | None = None,
    dlt_var_max: int | None = None,
    suppress: tuple[str | Path, ...] = (),
    gsm_only: bool = False,
    promo_window: str | None = None,
    schedule: bool = True,
    provider_optouts: bool = False,
) -> Rules:
    """Build the rules from option values, reading the files they name."""
    from pipeline.sms.window import DEFAULT_WINDOW, Window

    dlt = None
    if dlt_template is not None:
        from pipeline.validate.dlt import DEFAULT_VAR_MAX, DltMatcher, load_dlt_templates

        dlt = DltMatcher(load_dlt_templates(dlt_template), var_max=dlt_var_max or DEFAULT_VAR_MAX)
    suppression = None
    if suppress:
        from pipeline.validate.suppress import load_suppression

        suppression = load_suppression(list(suppress))
    window = Window.parse(promo_window or DEFAULT_WINDOW) if route == "promotional" else None
    return Rules(
        route=route,
        dlt=dlt,
        suppression=suppression,
        gsm_only=gsm_only,
        window=window,
        schedule=schedule,
        provider_optouts=provider_optouts,
        suppress_names=tuple(Path(p).name for p in suppress),
        sources=tuple(Path(p) for p in (dlt_template, *suppress) if p is not None),
    )
