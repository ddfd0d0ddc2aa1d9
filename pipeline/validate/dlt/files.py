r"""Read registered DLT templates from the files users keep them in (see matcher.py for matching).

Template files (UTF-8, a BOM is fine; a CRLF line end is one newline, as in template.py):
  .txt  one template per non-blank line, its id `line N` (N = line number in the file); or
        `ID<TAB>text` to give the DLT template id. In the text `\n` is a newline, `\t` a tab
        and `\\` a backslash; everything else is literal, spaces included.
  .csv  a header row naming `id`, `text` and optionally `category` (any case; other columns
        are ignored), separated by commas, semicolons or tabs; a quoted text may hold real
        newlines. Rows whose cells are all empty are skipped.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from pipeline.errors import InputError
from pipeline.read.textfiles import read_text
from pipeline.validate.dlt.matcher import BadText, DltTemplate, compile_text

_ESCAPE = re.compile(r"\\([\\nt])")
_UNESCAPE = {"\\": "\\", "n": "\n", "t": "\t"}


def load_dlt_templates(path: str | Path) -> list[DltTemplate]:
    """Read registered DLT templates from a .txt (one per line) or .csv (id, text) file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".csv"):
        raise InputError(
            f'{path}: DLT templates must be a .txt or .csv file, not "{suffix or path.name}"; '
            "save them as CSV with id and text columns, or as text with one template per line"
        )
    text = _read(path)
    if suffix == ".txt":
        templates = _from_txt(text, path)
        how = "write one registered template per line"
    else:
        templates = _from_csv(text, path)
        how = "add a row per registered template under the id,text header"
    if not templates:
        raise InputError(f"{path}: no DLT templates in the file; {how}")
    return templates


def _read(path: Path) -> str:
    return read_text(
        path, what="DLT templates", where="the path", save_as="UTF-8 (in Excel: CSV UTF-8)"
    )


def _from_txt(text: str, path: Path) -> list[DltTemplate]:
    out: list[DltTemplate] = []
    seen: dict[str, str] = {}
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path} line {n}"
        template_id, tab, body = line.partition("\t")
        if not tab:
            template_id, body = f"line {n}", line
        elif not (template_id := template_id.strip()):
            raise InputError(
                f"{where}: nothing before the tab; write the DLT template id, a "
                "tab, then the text (or remove the tab)"
            )
        body = _ESCAPE.sub(lambda m: _UNESCAPE[m.group(1)], body)
        out.append(_checked(DltTemplate(template_id, body), where, f"line {n}", seen))
    return out


def _from_csv(text: str, path: Path) -> list[DltTemplate]:
    first = text.split("\n", 1)[0]
    # Excel writes ";" where "," is the decimal comma; pick the separator that finds both.
    delimiter = next(
        (
            d
            for d in ",;\t"
            if {"id", "text"} <= {h.strip().strip('"').strip().lower() for h in first.split(d)}
        ),
        ",",
    )
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    out: list[DltTemplate] = []
    seen: dict[str, str] = {}
    n = 1  # row numbers as Excel shows them, the header being row 1
    try:
        header = next(rows, None)
        if header is None:
            return out
        columns = _columns(header, path)
        for n, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            cells = {k: row[i] if i < len(row) else "" for k, i in columns.items()}
            where = f"{path} row {n}"
            template_id = cells["id"].strip()
            if not template_id:
                raise InputError(
                    f"{where}: the id is empty; fill in the template id from the DLT portal"
                )
            category = cells.get("category", "").strip() or None
            template = DltTemplate(template_id, cells["text"], category)
            out.append(_checked(template, where, f"row {n}", seen))
    except csv.Error as exc:
        raise InputError(
            f"{path} row {n + 1}: cannot read the CSV ({exc}); check the quotes on that row"
        ) from None
    return out


def _columns(header: list[str], path: Path) -> dict[str, int]:
    """Positions of the id, text and (optional) category columns in the header row."""
    names = [h.strip().lower() for h in header]
    columns: dict[str, int] = {}
    for name in ("id", "text", "category"):
        if names.count(name) > 1:
            raise InputError(f'{path}: column "{name}" appears twice in the header row; keep one')
        if name in names:
            columns[name] = names.index(name)
        elif name != "category":
            found = ", ".join(h.strip() for h in header if h.strip()) or "(none)"
            raise InputError(
                f'{path}: no "{name}" column in the header row (found: {found}); '
                "name the columns id, text and optionally category"
            )
    return columns


def _checked(template: DltTemplate, where: str, label: str, seen: dict[str, str]) -> DltTemplate:
    """The template if DLT could have registered it and its id is new, else InputError."""
    try:
        compile_text(template.id, template.text)
    except BadText as exc:
        raise InputError(f"{where}: {exc}") from None
    if template.id in seen:
        raise InputError(
            f"{where}: template id {template.id} is also on {seen[template.id]}; "
            "list each registered template once"
        )
    seen[template.id] = label
    return template
