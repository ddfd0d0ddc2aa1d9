"""India's rules before a credit is spent: routes × senders and once-per-run warnings."""

from __future__ import annotations

import pytest

from pipeline.errors import InputError
from pipeline.validate.rules import NO_DLT_WARNING, Rules, check_sender, template_warnings

SENDERS = ["ACMEST", "AcmeSt", "123456", "ACME12", "ACMES", "1234567", "ACMESTO", ""]
VALID = {
    "transactional": {"ACMEST", "AcmeSt"},
    "service": {"ACMEST", "AcmeSt"},
    "promotional": {"123456"},
}


@pytest.mark.parametrize("route", ["transactional", "service", "promotional"])
@pytest.mark.parametrize("sender", SENDERS)
def test_route_by_sender_validity_table(route, sender):
    if sender in VALID[route]:
        assert check_sender(sender, route) == sender  # case kept as registered
    else:
        with pytest.raises(InputError) as info:
            check_sender(sender, route)
        wanted = (
            "6 digits (a promotional DLT header)"
            if route == "promotional"
            else "6 letters (your DLT header, case as registered)"
        )
        assert str(info.value) == (
            f"sender {sender!r} does not fit the {route} route: it must "
            f"be {wanted}; fix --sender / TEXTLOCAL_SENDER or --route"
        )


def test_unknown_route_is_an_input_error():
    with pytest.raises(InputError, match="unknown route 'marketing'"):
        Rules(route="marketing")


def test_check_without_dlt_templates_warns_once():
    assert template_warnings("Hi {Name}", Rules(), checking=True) == [NO_DLT_WARNING]
    assert template_warnings("Hi {Name}", Rules(), checking=False) == []


@pytest.mark.parametrize(
    ("text", "warned"),
    [
        ("Sale! 20% off at Acme", True),
        ("Sale! 20% off at Acme. Reply STOP to opt out", False),
        ("Sale! To unsubscribe sms 1909", False),
        ("Sale! opt-out: acme.in/x", False),
    ],
)
def test_promotional_template_without_an_opt_out_instruction_warns(text, warned):
    warnings = template_warnings(text, Rules(route="promotional"), checking=False)
    assert bool(warnings) is warned
    if warned:
        assert warnings[0].startswith("the promotional template has no opt-out instruction")
