"""DLT template matching, reasons, template files and the {Column} template check.

The operators' rules: docs/provider-api.md, "DLT templates and headers".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.merge.template import parse_template
from pipeline.validate.dlt import (
    DEFAULT_VAR_MAX,
    DltMatcher,
    DltTemplate,
    load_dlt_templates,
)
from tests.helpers import DATA

ORDER = DltTemplate("1007", "Dear customer, your order {#var#} has shipped.\nTrack: {#var#} - Acme")
OTP = DltTemplate("1008", "{#var#} is your OTP. Do not share it. - Acme")  # variable first
BALANCE = DltTemplate("1009", "Acme: your balance is Rs {#var#}")  # variable last
SHIPPED = "Dear customer, your order {} has shipped.\nTrack: {} - Acme"


@pytest.fixture(scope="module")
def matcher() -> DltMatcher:
    return DltMatcher([ORDER, OTP, BALANCE])


# ---- matching ---------------------------------------------------------------------------


def test_exact_match_returns_the_template_id(matcher: DltMatcher) -> None:
    assert matcher.match(SHIPPED.format("A-1234", "acme.in/t/9")) == ("1007", None)


def test_variables_at_the_very_start_and_the_very_end(matcher: DltMatcher) -> None:
    assert matcher.match("482913 is your OTP. Do not share it. - Acme") == ("1008", None)
    assert matcher.match("Acme: your balance is Rs 1,499.00") == ("1009", None)
    both = DltMatcher([DltTemplate("7", "{#var#}, pay {#var#}")])
    assert both.match("Ravi, pay Rs 500 today") == ("7", None)


def test_an_empty_variable_fits(matcher: DltMatcher) -> None:
    # Decision: a variable holds 0..var_max characters (DLT accepts empty ones in practice).
    assert matcher.match(" is your OTP. Do not share it. - Acme") == ("1008", None)
    assert matcher.match("Acme: your balance is Rs ") == ("1009", None)
    assert matcher.match(SHIPPED.format("", "")) == ("1007", None)


def test_variable_of_30_fits_and_31_is_one_over(matcher: DltMatcher) -> None:
    assert DEFAULT_VAR_MAX == 30
    assert matcher.match(SHIPPED.format("x" * 30, "y")) == ("1007", None)
    assert matcher.match(SHIPPED.format("x" * 31, "y")) == (
        None,
        "template 1007: variable 1 is 31 characters (1 over the 30 limit)",
    )
    assert matcher.match(SHIPPED.format("x", "y" * 35)) == (
        None,
        "template 1007: variable 2 is 35 characters (5 over the 30 limit)",
    )


def test_var_max_is_configurable() -> None:
    short = DltMatcher([BALANCE], var_max=5)
    assert short.match("Acme: your balance is Rs 12345") == ("1009", None)
    assert short.match("Acme: your balance is Rs 123456") == (
        None,
        "template 1009: variable 1 is 6 characters (1 over the 5 limit)",
    )
    with pytest.raises(ValueError, match="var_max must be at least 1, got 0"):
        DltMatcher([BALANCE], var_max=0)


def test_a_variable_may_hold_a_newline() -> None:
    assert DltMatcher([BALANCE]).match("Acme: your balance is Rs 5\n(as of today)") == (
        "1009",
        None,
    )


def test_the_second_template_matches() -> None:
    first = DltTemplate("A", "Your OTP is {#var#}. - Acme")
    second = DltTemplate("B", "Your OTP for login is {#var#}. - Acme")
    m = DltMatcher([first, second])
    assert m.match("Your OTP for login is 1234. - Acme") == ("B", None)
    assert m.match("Your OTP is 1234. - Acme") == ("A", None)


def test_first_template_in_file_order_wins() -> None:
    m = DltMatcher([DltTemplate("A", "Hi {#var#}"), DltTemplate("B", "Hi {#var#}!")])
    assert m.match("Hi Ravi!") == ("A", None)  # "Ravi!" fits A's variable


def test_regex_characters_in_fixed_text_are_literal() -> None:
    m = DltMatcher([DltTemplate("1", "Pay Rs.{#var#} (incl. 18% GST)* now? [y/n] $1 ^|\\d")])
    assert m.match("Pay Rs.500 (incl. 18% GST)* now? [y/n] $1 ^|\\d") == ("1", None)
    assert m.match("Pay Rs 500 (incl. 18% GST)* now? [y/n] $1 ^|\\d")[0] is None


# ---- reasons ----------------------------------------------------------------------------


def test_extra_space_reason(matcher: DltMatcher) -> None:
    message = SHIPPED.format("A-1", "t.co/1").replace("Dear ", "Dear  ")
    assert matcher.match(message) == (
        None,
        (
            'template 1007: fixed text differs at character 6: template has "Dear customer, '
            'your", message has "Dear  customer, you"'
        ),
    )


def test_missing_newline_reason_shows_it(matcher: DltMatcher) -> None:
    message = "Dear customer, your order A-1 has shipped. Track: t.co/1 - Acme"
    assert matcher.match(message) == (
        None,
        (
            'template 1007: fixed text differs at character 43: template has "ipped.\\nTrack: '
            '{#var#}", message has "ipped. Track: t.co/1"'
        ),
    )


def test_changed_word_reason_points_at_it(matcher: DltMatcher) -> None:
    message = SHIPPED.format("A-1", "t.co/1").replace("has shipped", "is shipped")
    assert matcher.match(message) == (
        None,
        (
            'template 1007: fixed text differs at character 31: template has " has shipped.\\nT", '
            'message has " is shipped.\\nTr"'
        ),
    )


def test_invisible_characters_are_written_out(matcher: DltMatcher) -> None:
    message = "Acme:\u00a0your balance is Rs 5"
    assert matcher.match(message) == (
        None,
        (
            'template 1009: fixed text differs at character 6: template has "Acme: your balance ", '
            'message has "Acme:\\xa0your balance "'
        ),
    )


def test_message_ends_early_reason(matcher: DltMatcher) -> None:
    assert matcher.match("Dear customer, your order A-1 has shipped.\nTrack: t.co/1") == (
        None,
        'template 1007: message ends early: template expects " - Acme" at the end',
    )
    assert matcher.match("Dear customer, your order A-1 has shi") == (
        None,
        (
            'template 1007: message ends early: template expects "pped.\\nTrack: {#var#} - Acme" '
            "at the end"
        ),
    )
    assert matcher.match("") == (
        None,
        (
            'template 1007: message ends early: template expects "Dear customer, your order '
            '{#va…" at the end'
        ),
    )


def test_extra_text_at_the_end_reason(matcher: DltMatcher) -> None:
    message = SHIPPED.format("A-1", "t.co/1") + ". Reply STOP to opt out"
    assert matcher.match(message) == (
        None,
        'template 1007: extra text at the end: ". Reply STOP to opt out"',
    )
    fixed = DltMatcher([DltTemplate("P1", "Big sale today at Acme!")])
    assert fixed.match("Big sale today at Acme!! Visit us now, everything 50% off") == (
        None,
        'template P1: extra text at the end: "! Visit us now, everything 50%…"',
    )


def test_reason_names_the_closest_template(matcher: DltMatcher) -> None:
    # A wrong first word: the order template still shares the most fixed words.
    message = SHIPPED.format("A-1", "t.co/1").replace("Dear", "dear")
    assert matcher.match(message) == (
        None,
        (
            'template 1007: fixed text differs at character 1: template has "Dear customer,", '
            'message has "dear customer,"'
        ),
    )
    assert matcher.match("1234 is your OTP. Do not share it - Acme") == (
        None,
        (
            'template 1008: fixed text differs at character 34: template has "are it. - Acme", '
            'message has "are it - Acme"'
        ),
    )


def test_reasons_stay_short() -> None:
    long_id = "1107161234567890123"
    m = DltMatcher([DltTemplate(long_id, "Dear customer, " * 10 + "{#var#}")])
    reason = m.match("Dear customer, " * 9 + "Dear\n\n\n\n\n\n\n\n\n\ncustomer, 5")[1]
    assert reason == (
        f'template {long_id}: fixed text differs at character 140: template has ", Dear '
        'customer, {#var#}", message has ", Dear\\n\\n\\n\\n\\n\\n\\n\\n\\n\\ncust"'
    )
    assert len(reason) < 160


def test_match_many_passes_none_through(matcher: DltMatcher) -> None:
    ids, reasons = matcher.match_many(
        [
            SHIPPED.format("A-1", "t.co/1"),
            None,
            "Acme: your balance is Rs 10",
            "Acme: your balance is Rs " + "9" * 31,
        ]
    )
    assert ids == ["1007", None, "1009", None]
    assert reasons == [
        None,
        None,
        None,
        "template 1009: variable 1 is 31 characters (1 over the 30 limit)",
    ]
    assert matcher.match_many([]) == ([], [])


# ---- templates given directly -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "Your OTP is {#VAR#}",
            'DLT template X: malformed variable "{#VAR#}"; write each variable '
            "exactly as {#var#} (lower case, no spaces)",
        ),
        (
            "Your OTP is {#var}.",
            'DLT template X: malformed variable "{#var}"; write each variable '
            "exactly as {#var#} (lower case, no spaces)",
        ),
        (
            "Hi {# var #}",
            'DLT template X: malformed variable "{# var #}"; write each variable '
            "exactly as {#var#} (lower case, no spaces)",
        ),
        (
            "Hi {#name#}",
            'DLT template X: malformed variable "{#name#}"; write each variable '
            "exactly as {#var#} (lower case, no spaces)",
        ),
        (
            "{#var#} {#var#}",
            "DLT template X: the template has only variables, and DLT does not "
            "allow a template without fixed text; copy the registered template "
            "text exactly",
        ),
        ("  ", "DLT template X: the text is empty; paste the registered template text"),
    ],
)
def test_matcher_rejects_templates_dlt_would_not_register(text: str, error: str) -> None:
    with pytest.raises(InputError) as exc:
        DltMatcher([DltTemplate("X", text)])
    assert str(exc.value) == error


def test_matcher_needs_templates() -> None:
    with pytest.raises(InputError) as exc:
        DltMatcher([])
    assert str(exc.value) == "no DLT templates given; pass the templates registered on DLT"


# ---- template files ---------------------------------------------------------------------


def test_load_txt() -> None:
    assert load_dlt_templates(DATA / "dlt_templates.txt") == [
        DltTemplate("line 1", ORDER.text),
        DltTemplate("1107161234567890002", OTP.text),
        DltTemplate("line 5", BALANCE.text),
    ]


def test_load_txt_escapes_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffA\\\\n {#var#}\\tB\r\n\r\n9\tC:\\path {#var#}\r\n".encode())
    assert load_dlt_templates(path) == [
        DltTemplate("line 1", "A\\n {#var#}\tB"),
        DltTemplate("9", "C:\\path {#var#}"),
    ]


def test_load_csv_with_category_and_quoted_newline() -> None:
    assert load_dlt_templates(DATA / "dlt_templates.csv") == [
        DltTemplate("1107161234567890001", ORDER.text, "Service Implicit"),
        DltTemplate("1107161234567890002", OTP.text, "Transactional"),
        DltTemplate("1107161234567890003", BALANCE.text, None),
    ]


def test_load_csv_semicolons_crlf_and_no_category(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b'Text;Id\r\n"Hi {#var#};\r\nbye";1\r\n')
    assert load_dlt_templates(path) == [DltTemplate("1", "Hi {#var#};\nbye")]


def test_loaded_templates_match() -> None:
    m = DltMatcher(load_dlt_templates(DATA / "dlt_templates.csv"))
    assert m.match(SHIPPED.format("A-1", "t.co/1")) == ("1107161234567890001", None)


def _error(path: Path) -> str:
    with pytest.raises(InputError) as exc:
        load_dlt_templates(path)
    return str(exc.value)


def test_bad_extension_missing_file_and_folder(tmp_path: Path) -> None:
    xlsx = tmp_path / "t.xlsx"
    xlsx.write_bytes(b"x")
    assert _error(xlsx) == (
        f'{xlsx}: DLT templates must be a .txt or .csv file, not ".xlsx"; save them as CSV '
        "with id and text columns, or as text with one template per line"
    )
    missing = tmp_path / "nope.txt"
    assert _error(missing) == f"{missing}: DLT templates file not found; check the path"
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    assert _error(folder) == f"{folder}: is a folder; give the DLT templates file's path"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,text\n1,Caf\xe9 {#var#}\n")
    assert _error(path) == (
        f"{path}: not valid UTF-8 (byte 0xe9 at offset 13); save the DLT templates as UTF-8 "
        "(in Excel: CSV UTF-8) and rerun"
    )


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("t.txt", "\n  \n", "no DLT templates in the file; write one registered template per line"),
        (
            "t.csv",
            "",
            "no DLT templates in the file; add a row per registered template under "
            "the id,text header",
        ),
        (
            "t.csv",
            "id,text\n,\n",
            "no DLT templates in the file; add a row per registered "
            "template under the id,text header",
        ),
        (
            "t.csv",
            "ID,Body\n1,Hi {#var#}\n",
            'no "text" column in the header row (found: ID, '
            "Body); name the columns id, text and optionally "
            "category",
        ),
        ("t.csv", "id,text,Text\n", 'column "text" appears twice in the header row; keep one'),
    ],
)
def test_file_level_errors(tmp_path: Path, name: str, content: str, error: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert _error(path) == f"{path}: {error}"


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        (
            "t.txt",
            "Hi {#var#}\n\nYour OTP is {#VAR#}\n",
            'line 3: malformed variable "{#VAR#}"; write each variable exactly as {#var#} '
            "(lower case, no spaces)",
        ),
        (
            "t.txt",
            "Your OTP is {#var}\n",
            'line 1: malformed variable "{#var}"; write each variable exactly as {#var#} '
            "(lower case, no spaces)",
        ),
        (
            "t.txt",
            "Hi {#var#}\n{#var#}{#var#}\n",
            "line 2: the template has only variables, and DLT does not allow a template without "
            "fixed text; copy the registered template text exactly",
        ),
        (
            "t.txt",
            "\tHi {#var#}\n",
            "line 1: nothing before the tab; write the DLT template id, a tab, then the text "
            "(or remove the tab)",
        ),
        (
            "t.txt",
            "7\tHi {#var#}\n7\tBye {#var#}\n",
            "line 2: template id 7 is also on line 1; list each registered template once",
        ),
        (
            "t.csv",
            "id,text\n1,Hi {#var#}\n2,\n",
            "row 3: the text is empty; paste the registered template text",
        ),
        (
            "t.csv",
            "id,text\n1,Hi {#var#}\n,Bye {#var#}\n",
            "row 3: the id is empty; fill in the template id from the DLT portal",
        ),
        (
            "t.csv",
            'id,text\n1,"Hi\n{#var#}"\n1,Bye {#var#}\n',
            "row 3: template id 1 is also on row 2; list each registered template once",
        ),
        (
            "t.csv",
            'id,text\n1,"Hi {#var#}" there\n',
            "row 2: cannot read the CSV (',' expected after '\"'); check the quotes on that row",
        ),
        (
            "t.csv",
            'id,text\n1,Hi {#var#}\n2,"Bye {#var#}\n',
            "row 3: cannot read the CSV (unexpected end of data); check the quotes on that row",
        ),
    ],
)
def test_row_level_errors(tmp_path: Path, name: str, content: str, error: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert _error(path) == f"{path} {error}"


# ---- the {Column} template against the DLT templates ------------------------------------

HEADERS = ["Name", "Order", "Link", "Amount", "Shop"]


def test_check_template_passes_for_a_compatible_template(matcher: DltMatcher) -> None:
    template = parse_template(
        "Dear customer, your order {Order} has shipped.\nTrack: {Link} - Acme", HEADERS
    )
    assert matcher.check_template(template) is None
    # Literal text of the user's template may fill a DLT variable, alone or with placeholders.
    m = DltMatcher([DltTemplate("20", "Dear {#var#}, your order {#var#} from {#var#} is ready")])
    m.check_template(
        parse_template("Dear customer, your order {Order} from Acme Stores is ready", HEADERS)
    )
    m.check_template(
        parse_template("Dear {Name} ji, your order #{Order}/{Link} from {Shop} is ready", HEADERS)
    )


def test_check_template_fails_with_the_exact_message(matcher: DltMatcher) -> None:
    template = parse_template(
        "Dear  customer, your order {Order:>8} has shipped.\nTrack: {Link} - Acme", HEADERS
    )
    with pytest.raises(InputError) as exc:
        matcher.check_template(template, source="template.txt")
    assert str(exc.value) == (
        "template.txt does not fit any registered DLT template: closest is 1007: fixed text "
        'differs at character 6: template has "Dear customer, your", message has "Dear  '
        'customer, you"; make the message text match the registered template exactly'
    )


def test_check_template_placeholder_where_dlt_has_fixed_text() -> None:
    m = DltMatcher([DltTemplate("20", "Dear customer, your order {#var#} is ready")])
    with pytest.raises(InputError) as exc:
        m.check_template(parse_template("Dear {Name}, your order {Order:>8} is ready", HEADERS))
    # Positions count in the user's template, placeholders shown as written.
    assert str(exc.value) == (
        "template does not fit any registered DLT template: closest is 20: fixed text differs "
        'at character 6: template has "Dear customer, your", message has "Dear {Name}, your '
        'order "; make the message text match the registered template exactly'
    )


def test_check_template_literal_text_too_long_for_a_variable() -> None:
    m = DltMatcher([DltTemplate("20", "Dear {#var#}, your order {#var#} is ready")])
    template = parse_template(
        "Dear {Name}, your order {Order} from Acme Stores Koramangala Branch is ready", HEADERS
    )
    with pytest.raises(InputError) as exc:
        m.check_template(template)
    assert str(exc.value) == (
        "template does not fit any registered DLT template: closest is 20: variable 2 is at "
        "least 37 characters (7 over the 30 limit); put at most 30 characters where the "
        "registered template has that {#var#}"
    )
    # Text alone in a variable is measured exactly.
    fixed = parse_template("Dear customer, your order " + "x" * 31 + " is ready", HEADERS)
    with pytest.raises(InputError, match=r"variable 2 is 31 characters \(1 over the 30 limit\)"):
        m.check_template(fixed)


def test_check_template_missing_ending() -> None:
    m = DltMatcher([ORDER])
    template = parse_template(
        "Dear customer, your order {Order} has shipped.\nTrack: {Link}", HEADERS
    )
    with pytest.raises(InputError) as exc:
        m.check_template(template, source="t.txt")
    assert str(exc.value) == (
        "t.txt does not fit any registered DLT template: closest is 1007: message ends early: "
        'template expects " - Acme" at the end; make the message text match the registered '
        "template exactly"
    )
