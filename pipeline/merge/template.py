"""Message templates: parse `{Column Header}` placeholders and render them per row.

The syntax and rendering promised: docs/contract.md, "Template". Our own small parser rather
than `str.format`: headers may contain spaces, dots and colons (`{Mobile No.}`,
`{Time: slot}`), and cells must render the way the user sees them in Excel (1499.0 → `1499`,
dates as `YYYY-MM-DD`), which `format_map` does not do.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from numbers import Integral, Number
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError, SmsBatchError
from pipeline.read.textfiles import read_text

__all__ = [
    "MissingValue",
    "Placeholder",
    "Template",
    "is_empty",
    "load_template",
    "parse_template",
    "render_value",
]


class MissingValue(SmsBatchError):
    """A placeholder's cell is empty in this row; the row gets status `missing_field`."""

    def __init__(self, column: str) -> None:
        super().__init__(
            f"the cell in column {column!r} is empty; fill it in or remove {{{column}}} "
            "from the template"
        )
        self.column = column


@dataclass(frozen=True)
class Placeholder:
    """One `{Column:spec}` in a template: the header it names and its optional format spec."""

    column: str
    spec: str | None = None


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text (braces unescaped) and placeholders, in order."""

    text: str
    parts: tuple[str | Placeholder, ...]

    @property
    def columns(self) -> list[str]:
        """Distinct columns used, in first-use order."""
        seen = dict.fromkeys(p.column for p in self.parts if isinstance(p, Placeholder))
        return list(seen)

    def render_row(self, row: Mapping[str, object]) -> str:
        """Render one row; raise MissingValue naming the first used column whose cell is empty."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            # A key absent from the row is an empty cell, not a KeyError.
            text = render_value(row.get(part.column), part.spec)
            if not text:
                raise MissingValue(part.column)
            out.append(text)
        return "".join(out)

    def render(
        self, columns: Mapping[str, Sequence[object]], n: int
    ) -> tuple[list[str | None], list[str | None]]:
        """Render n rows from column lists: (messages, missing); a row with an empty used cell
        gets message None and, in `missing`, the first such column (docs/contract.md,
        "Template")."""
        placeholders = [p for p in self.parts if isinstance(p, Placeholder)]
        if not placeholders:
            text = self.parts[0] if self.parts else ""
            assert isinstance(text, str)  # no placeholders: the parts are text only
            return [text] * n, [None] * n
        data: dict[str, list[object]] = {}
        for col in self.columns:
            if col not in columns:
                raise ValueError(f"render: no data given for column {col!r}")
            values = _as_list(columns[col])
            if len(values) != n:
                raise ValueError(f"render: column {col!r} has {len(values)} values, expected {n}")
            data[col] = values
        # Each (column, spec) is rendered once for the whole column, then rows are zipped.
        rendered: dict[tuple[str, str | None], list[str]] = {}
        for p in placeholders:
            if (p.column, p.spec) not in rendered:
                rendered[p.column, p.spec] = _render_column(data[p.column], p.spec)
        missing: list[str | None] = [None] * n
        for col in reversed(self.columns):  # reversed, so the first used column wins
            strings = next(v for (c, _), v in rendered.items() if c == col)
            if "" in strings:  # render_value gives "" exactly for empty cells
                for i in [i for i, s in enumerate(strings) if not s]:
                    missing[i] = col
        # %-formatting a tuple per row is done in C; literal "%" is escaped as "%%".
        fmt = "".join(
            "%s" if isinstance(p, Placeholder) else p.replace("%", "%%") for p in self.parts
        )
        cols = [rendered[p.column, p.spec] for p in placeholders]
        messages: list[str | None] = [fmt % t for t in zip(*cols, strict=True)]
        for i, empty_col in enumerate(missing):
            if empty_col is not None:
                messages[i] = None
        return messages, missing


def parse_template(text: str, headers: Sequence[str], *, source: str = "template") -> Template:
    """Parse `text` against the sheet's `headers`; InputError for unknown or malformed ones."""
    by_name: dict[str, str] = {}
    for header in headers:
        by_name.setdefault(str(header).strip(), header)
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    unknown: list[str] = []
    i, end = 0, len(text)
    while i < end:
        brace = _BRACE.search(text, i)
        if brace is None:
            literal.append(text[i:])
            break
        j = brace.start()
        literal.append(text[i:j])
        if text.startswith(("{{", "}}"), j):
            literal.append(text[j])
            i = j + 2
            continue
        if text[j] == "}":
            raise InputError(
                f'{source}: lone "}}" at {_where(text, j)}; write "}}}}" for a literal "}}"'
            )
        close = text.find("}", j + 1)
        reopen = text.find("{", j + 1, close)
        if close == -1 or reopen != -1:
            raise InputError(
                f'{source}: lone "{{" at {_where(text, j)}; close the placeholder with "}}" '
                f'or write "{{{{" for a literal "{{"'
            )
        inner = text[j + 1 : close].strip()
        if not inner:
            raise InputError(
                f'{source}: empty placeholder "{{}}" at {_where(text, j)}; put a column header '
                'inside the braces, or write "{{}}" for literal braces'
            )
        placeholder = _resolve(inner, by_name)
        if placeholder is None:
            if inner not in unknown:
                unknown.append(inner)
        elif placeholder.spec is not None and not _spec_fits_anything(placeholder.spec):
            raise InputError(
                f'{source}: "{{{inner}}}" at {_where(text, j)}: ":{placeholder.spec}" is not a '
                'format Python knows for numbers, text or dates; write e.g. ":.2f" or ":," '
                'for numbers, ":%d %b %Y" for dates'
            )
        else:
            if text_so_far := "".join(literal):
                parts.append(text_so_far)
            literal = []
            parts.append(placeholder)
        i = close + 1
    if unknown:
        names = ", ".join(f"{{{u}}}" for u in unknown)
        plural = "s" if len(unknown) > 1 else ""
        known = ", ".join(by_name) or "(none)"
        raise InputError(
            f"{source}: unknown placeholder{plural} {names}; the sheet's headers are: {known}; "
            "fix the template or the header"
        )
    if text_so_far := "".join(literal):
        parts.append(text_so_far)
    return Template(text=text, parts=tuple(parts))


def load_template(path: str | Path, headers: Sequence[str]) -> Template:
    """Read a UTF-8 template file and parse it against `headers`."""
    text = read_text(path, what="template", where="the --template path")
    # Files end with a newline the user does not mean to send; inner newlines are kept.
    if text.endswith("\n"):
        text = text[:-1]
    if not text.strip():
        raise InputError(f"{path}: the template is empty; write the message text in it")
    return parse_template(text, headers, source=str(path))


def is_empty(value: object) -> bool:
    """True for a cell the user sees as blank: None, NaN, NaT, NA, '' or whitespace only."""
    return not _default(value)


def render_value(value: object, spec: str | None = None) -> str:
    """Render one cell as the user sees it, applying `spec` when it fits; '' for empty cells."""
    text = _default(value)
    if spec is None or not text:
        return text
    try:
        out = _with_spec(value, spec, text)
    except (ValueError, TypeError, OverflowError):
        return text  # one odd cell must not stop the batch: show it as written
    return out or text  # a filled cell never renders empty (empty means missing_field)


# ---- default rendering ------------------------------------------------------------------


def _float(x: float) -> str:
    if x != x:  # NaN
        return ""
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))  # 1499.0 → 1499; phones read as numbers stay whole
    # 15 significant digits is what Excel displays: 0.1+0.2 shows 0.3, 250.5 stays 250.5.
    return format(x, ".15g")


def _datetime(d: dt.datetime) -> str:
    if not (d.hour or d.minute or d.second or d.microsecond or getattr(d, "nanosecond", 0)):
        # A date cell read as a datetime (pandas, openpyxl) is midnight; python-calamine
        # applies the same rule when it returns a date for such a cell.
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}"


def _blank(_: object) -> str:
    return ""


def _bool(b: object) -> str:
    return "TRUE" if b else "FALSE"  # as Excel displays a boolean cell


def _decimal(d: Decimal) -> str:
    if d.is_nan():
        return ""
    if not d.is_finite():
        return str(d)
    return str(int(d)) if d == d.to_integral_value() else str(d)


@lru_cache(maxsize=64)
def _renderer(tp: type) -> Callable[[object], str]:
    """The default renderer for a cell type (resolved once per type)."""
    table: list[tuple[type | tuple[type, ...], Callable[..., str]]] = [
        ((type(None), type(pd.NaT), type(pd.NA)), _blank),
        ((bool, np.bool_), _bool),
        (str, str.strip),
        (dt.datetime, _datetime),  # includes pandas.Timestamp; before date (its base class)
        (dt.date, dt.date.isoformat),
        (dt.time, lambda t: f"{t.hour:02d}:{t.minute:02d}"),
        ((float, np.floating), lambda x: _float(float(x))),
        (Integral, lambda x: str(int(x))),
        (Decimal, _decimal),
        (np.datetime64, lambda x: _default(pd.Timestamp(x))),
    ]
    for types, fn in table:
        if issubclass(tp, types):
            return fn
    return lambda v: str(v).strip()


def _default(value: object) -> str:
    # `type`, not the inferred type[object]: mypy does not see a class as Hashable
    tp: type = type(value)
    return _renderer(tp)(value)


# ---- format specs -----------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?", re.ASCII)
_BRACE = re.compile(r"[{}]")


def _format_number(x: object, spec: str) -> str:
    try:
        return format(x, spec)
    except ValueError:
        # Excel numbers are floats: let `{Qty:d}` / `{Amount:,d}` work on 1499.0.
        if isinstance(x, float) and x.is_integer():
            return format(int(x), spec)
        raise


def _spec_fits_anything(spec: str) -> bool:
    """Whether `spec` formats at least one kind of cell. A cell it does not fit is shown as
    written (render_value), but a spec that fits no kind at all (`.2q`) is a typo that would
    silently do nothing on every row. A spec with `%` is a date format (strftime takes any)."""
    if "%" in spec:
        return True
    for sample in (1.5, 1, "x"):
        try:
            format(sample, spec)
        except (ValueError, TypeError):
            continue
        return True
    return False


def _with_spec(value: object, spec: str, text: str) -> str:
    if isinstance(value, bool | np.bool_):
        return text
    if isinstance(value, dt.date | dt.time):
        return value.strftime(spec) if "%" in spec else text
    if isinstance(value, Integral):
        return format(int(value), spec)
    if isinstance(value, float | np.floating):
        return _format_number(float(value), spec)
    if isinstance(value, Decimal):
        return format(value, spec)
    if not isinstance(value, str):
        return text
    # CSV cells are strings: format them as what they look like (docs/contract.md, "Template").
    if _NUMBER.fullmatch(text):
        number = int(text) if text.lstrip("+-").isdigit() else float(text)
        try:
            return _format_number(number, spec)
        except ValueError:
            pass
    if "%" in spec and _ISO_DATE.fullmatch(text):
        return dt.datetime.fromisoformat(text).strftime(spec)
    return format(text, spec)  # e.g. `.30` truncates, `>10` pads


def _render_column(values: list[object], spec: str | None) -> list[str]:
    """render_value over a whole column, with fast paths for single-type columns."""
    types = set(map(type, values))
    if spec is None:
        if types == {str}:
            return list(map(str.strip, values))  # type: ignore[arg-type]
        if types == {int}:
            return list(map(str, values))
        if types == {float}:
            return list(map(_float, values))  # type: ignore[arg-type]
    elif types == {float} or types == {int}:
        try:
            return [format(v, spec) if v == v else "" for v in values]
        except (ValueError, TypeError, OverflowError):
            pass  # e.g. `d` on 1499.0: render_value knows the fallbacks
    numeric = [t for t in types if issubclass(t, Number | np.number | np.bool_)]
    if len(numeric) <= 1 and Decimal not in types and all(t.__hash__ for t in types):
        # Amounts, dates and text repeat a lot: format each distinct value once (a sample
        # says whether they do). Safe only while equal values render alike: no two numeric
        # types mixed (1 == 1.0 == True would share one key), no Decimal (1.5 == 1.50).
        try:
            if len(set(values[:_SAMPLE])) <= _SAMPLE // 2:
                table = {v: render_value(v, spec) for v in set(values)}
                return list(map(table.__getitem__, values))
        except TypeError:  # an unhashable value of a hashable type, e.g. a tuple of lists
            pass
    if spec is None:
        return list(map(_default, values))
    return [render_value(v, spec) for v in values]


_SAMPLE = 1000  # values looked at to decide whether a column repeats enough for a table


def _as_list(values: Sequence[object]) -> list[object]:
    if isinstance(values, list):
        return values
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        # datetime64[ns].tolist() gives integers; microseconds give datetime objects.
        return values.astype("datetime64[us]").tolist()
    tolist = getattr(values, "tolist", None)  # pandas/numpy: native Python scalars, fast
    return tolist() if callable(tolist) else list(values)


def _resolve(inner: str, by_name: Mapping[str, str]) -> Placeholder | None:
    """The placeholder `inner` names: the whole text if it is a header, else header:spec."""
    if inner in by_name:
        return Placeholder(by_name[inner])
    # The spec follows the last colon (docs/contract.md, "Template"); when that leaves no
    # header, an earlier colon is tried, so `{Slot:%H:%M}` works too. Never ambiguous: longest
    # header wins.
    end = len(inner)
    while (colon := inner.rfind(":", 0, end)) != -1:
        column = inner[:colon].strip()
        if column in by_name:
            return Placeholder(by_name[column], inner[colon + 1 :].strip() or None)
        end = colon
    return None


def _where(text: str, index: int) -> str:
    """'line L, column C' (1-based) of text[index]."""
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"
