"""Benchmark `check`: our path beside the naive one, stage by stage, in the same run.

    python benchmarks/bench_check.py                    # 100k and 1M rows; naive path at 100k
    python benchmarks/bench_check.py --sizes 10000 --naive-max 10000
    python benchmarks/bench_check.py --smoke            # tiny run, used by the test suite

Each measurement runs in a fresh subprocess so peak RSS belongs to that run alone: the stages
in one, `check` end to end in another, the naive path in a third. Sheets are
generated once under benchmarks/data/ (git-ignored). Absolute times on a shared machine are
noisy; the ratio between the two paths, measured in the same run, is the figure to quote.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
TEMPLATE = "Hi {Name}, your order {Order ID} of Rs {Amount} ships on {Ship Date:%d %b %Y}. - Acme"
NAIVE_TEMPLATE = "Hi {Name}, your order {OrderID} of Rs {Amount} ships on {ShipDate}. - Acme"
MOBILE_SERIES = ["98", "99", "97", "96", "94", "93", "90", "70"]
CITIES = ["Mumbai", "Pune", "Delhi", "Chennai", "Kolkata", "Bengaluru", "Jaipur", "Lucknow"]
VERIFIED = (
    "every row in order, known statuses, duplicates point back, no formulas, "
    "sampled numbers judged as phonenumbers does"
)
NAMES = ["Asha", "Ravi", "Priya", "Arjun", "Meera", "Kabir", "Ananya", "Rohan", "प्रिया"]


def phone_cell(rng: random.Random, i: int) -> object:
    """Mixed formats as real sheets have them, about 2% invalid."""
    # Series that India's numbering plan gives to mobiles (random 6-9 numbers are often
    # landline ranges, e.g. 80 Bengaluru, and would all be rejected as landlines).
    digits = f"{rng.choice(MOBILE_SERIES)}{rng.randrange(10**8):08d}"
    kind = i % 10
    if rng.random() < 0.02:
        return rng.choice(["12345", "022 2345 6789", "+1 415 555 2671", "n/a", "9.19876E+11"])
    if kind == 0:
        return int(digits)
    if kind == 1:
        return float("91" + digits)
    if kind == 2:
        return f"+91 {digits[:5]} {digits[5:]}"
    if kind == 3:
        return f"0{digits[:5]}-{digits[5:]}"
    if kind == 4:
        return f"0091{digits}"
    return digits


def generate(rows: int, path: Path, seed: int = 7) -> Path:
    """Write a contact sheet of `rows` rows (xlsx, via the Rust-backed writer)."""
    from rustpy_xlsxwriter import FastExcel

    rng = random.Random(seed)
    base = dt.date(2026, 1, 1)
    records = []
    previous: object = "9876543210"
    for i in range(rows):
        phone = previous if rng.random() < 0.01 else phone_cell(rng, i)
        previous = phone
        records.append(
            {
                "Name": rng.choice(NAMES),
                "Mobile No.": phone,
                "City": rng.choice(CITIES),
                "Order ID": f"ORD-{100000 + i}",
                "Amount": rng.choice([1499, 250.5, 99, 1200.75]) if i % 100 else None,
                "Ship Date": base + dt.timedelta(days=i % 60),
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    FastExcel(str(path)).sheet("Contacts", records).save()
    return path


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(sheet: Path, template: Path, out: Path) -> dict:
    """Time our stages, then the whole `check` end to end."""
    import pandas as pd

    from pipeline import job as batch
    from pipeline.merge.template import load_template
    from pipeline.read.sheet import load_sheet
    from pipeline.report.workbook import write_results
    from pipeline.sms import gsm as encoding
    from pipeline.sms import phones
    from pipeline.validate import schema

    stages: dict[str, float] = {}
    t = time.perf_counter()
    loaded = load_sheet(sheet)
    stages["read"] = time.perf_counter() - t

    t = time.perf_counter()
    e164 = phones.normalise_many(loaded.frame[loaded.phone_column])
    schema.invalid_phone_rows(
        pd.DataFrame({"phone_e164": e164}, index=loaded.frame.index, dtype="str")
    )
    stages["validate+normalise"] = time.perf_counter() - t

    t = time.perf_counter()
    tpl = load_template(template, list(loaded.frame.columns))
    columns = {name: loaded.frame[name].tolist() for name in tpl.columns}
    messages, _ = tpl.render(columns, len(loaded.frame))
    encoding.analyse(messages)
    stages["merge+segments"] = time.perf_counter() - t

    prepared = batch.prepare(loaded, tpl)
    t = time.perf_counter()
    write_results(out, loaded.frame, prepared.results, [("benchmark", "stage write")])
    stages["write"] = time.perf_counter() - t
    return {"rows": len(prepared.results), "stages": stages, "peak_rss_mb": peak_rss_mb()}


def run_check(sheet: Path, template: Path, out: Path) -> dict:
    """`check` end to end, alone in its process: its time and its peak memory; then, outside
    the timing, what it wrote is verified."""
    from pipeline import job as batch

    t = time.perf_counter()
    result = batch.check(sheet, template, out=out)
    seconds = time.perf_counter() - t
    peak = peak_rss_mb()
    return {
        "rows": len(result.results),
        "stages": {"check end to end": seconds},
        "peak_rss_mb": peak,
        "verified": verify(sheet, result, out),
    }


def verify(sheet: Path, result: object, out: Path, sample: int = 20_000) -> list[str]:
    """Correctness at this size: the problems found (none is the answer wanted).

    Every generated row has a result, in order, with source_row = its Excel row and a known
    status; each duplicate names an earlier row with the same number; no cell of the written
    Results sheet is a formula; and on a seeded sample, a number is sendable exactly when
    phonenumbers calls it a valid Indian mobile.
    """
    import re
    import zipfile

    import phonenumbers

    from pipeline.sms.phones import to_text
    from pipeline.statuses import STATUSES

    results = result.results  # type: ignore[attr-defined]
    frame = result.prepared.sheet.frame  # type: ignore[attr-defined]
    problems = []
    rows = int(re.search(r"contacts-(\d+)", sheet.name)[1])
    if results.index.tolist() != list(range(2, rows + 2)):
        problems.append(f"source_row is not 2..{rows + 1}")
    if unknown := set(results["status"]) - set(STATUSES):
        problems.append(f"unknown statuses {sorted(unknown)}")
    dups = results[results["status"] == "duplicate"]
    firsts = [int(re.search(r"row (\d+)", d)[1]) for d in dups["detail"]]
    wrong = sum(
        first >= row or results.at[first, "phone_e164"] != number
        for first, row, number in zip(firsts, dups.index, dups["phone_e164"], strict=True)
    )
    if wrong:
        problems.append(f"{wrong} duplicates name no earlier row with their number")
    with zipfile.ZipFile(out) as book:
        for name in book.namelist():
            if name.startswith("xl/worksheets/"):
                with book.open(name) as part:
                    tail = b""
                    while chunk := part.read(1 << 22):
                        if re.search(rb"<f[ >/]", tail + chunk):
                            problems.append(f"a formula in {name}")
                            break
                        tail = chunk[-8:]
    rng = random.Random(1)
    phone = result.prepared.sheet.phone_column  # type: ignore[attr-defined]
    disagree = 0
    sample = min(sample, len(results))
    for i in rng.sample(range(len(results)), sample):
        text = to_text(frame[phone].iat[i])
        theirs = None
        try:
            number = phonenumbers.parse(text or "", "IN")
        except phonenumbers.NumberParseException:
            number = None
        if (
            number is not None
            and phonenumbers.is_valid_number(number)
            and phonenumbers.region_code_for_number(number) == "IN"
            and phonenumbers.number_type(number)
            in (
                phonenumbers.PhoneNumberType.MOBILE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            )
        ):
            theirs = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        disagree += theirs != results["phone_e164"].iat[i]
    if disagree:
        problems.append(f"{disagree} of {sample:,} sampled numbers judged unlike phonenumbers")
    return problems


def run_naive(sheet: Path, template: Path, out: Path) -> dict:
    """The obvious script: pandas+openpyxl read, phonenumbers and format_map per row."""
    import openpyxl
    import pandas as pd
    import phonenumbers

    stages: dict[str, float] = {}
    start = t = time.perf_counter()
    frame = pd.read_excel(sheet, engine="openpyxl", dtype=object)
    stages["read"] = time.perf_counter() - t

    t = time.perf_counter()
    e164 = []
    for value in frame["Mobile No."]:
        try:
            number = phonenumbers.parse(str(value), "IN")
            ok = phonenumbers.is_valid_number(number)
            e164.append(
                phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                if ok
                else None
            )
        except phonenumbers.NumberParseException:
            e164.append(None)
    stages["validate+normalise"] = time.perf_counter() - t

    t = time.perf_counter()
    # str.format_map cannot address "Order ID", so the naive script renames the fields.
    fields = ["Name", "Order ID", "Amount", "Ship Date"]
    messages = [
        NAIVE_TEMPLATE.format_map(
            dict(zip(["Name", "OrderID", "Amount", "ShipDate"], r, strict=True))
        )
        for r in frame[fields].itertuples(index=False)
    ]
    segments = [1 if len(m) <= 160 else -(-len(m) // 153) for m in messages]
    stages["merge+segments"] = time.perf_counter() - t

    t = time.perf_counter()
    book = openpyxl.Workbook(write_only=True)
    sheet_out = book.create_sheet("Results")
    sheet_out.append([*frame.columns, "phone_e164", "message", "segments"])
    for row, number, message, parts in zip(
        frame.itertuples(index=False), e164, messages, segments, strict=True
    ):
        sheet_out.append([*row, number, message, parts])
    book.save(out)
    stages["write"] = time.perf_counter() - t
    stages["check end to end"] = time.perf_counter() - start
    return {"rows": len(frame), "stages": stages, "peak_rss_mb": peak_rss_mb()}


def measure(kind: str, sheet: Path, template: Path) -> dict:
    """Run one path in a fresh interpreter and return its JSON report."""
    out = DATA / f"{sheet.stem}-{kind}-results.xlsx"
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(sheet), str(template), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_table(rows: int, ours: dict, check: dict, naive: dict | None) -> None:
    """One table per size: seconds, rows/s, and the ratio to the naive path."""
    print(
        f"\n{rows:,} rows   (peak RSS: check {check['peak_rss_mb']:.0f} MB, "
        f"stages {ours['peak_rss_mb']:.0f} MB"
        + (f", naive {naive['peak_rss_mb']:.0f} MB)" if naive else ")")
    )
    print(f"{'stage':<20}{'ours s':>10}{'rows/s':>12}{'naive s':>10}{'ratio':>8}")
    for stage, seconds in {**ours["stages"], **check["stages"]}.items():
        rate = rows / seconds if seconds else float("inf")
        line = f"{stage:<20}{seconds:>10.2f}{rate:>12,.0f}"
        if naive and stage in naive["stages"]:
            theirs = naive["stages"][stage]
            line += f"{theirs:>10.2f}{theirs / seconds:>7.1f}x"
        print(line)
    problems = check.get("verified", [])
    print("verified: " + ("; ".join(problems) if problems else VERIFIED))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--naive-max",
        type=int,
        default=100_000,
        help="run the naive path only up to this many rows (it takes minutes)",
    )
    parser.add_argument("--smoke", action="store_true", help="2,000 rows, both paths")
    parser.add_argument(
        "--worker", nargs=4, metavar=("KIND", "SHEET", "TEMPLATE", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        kind, sheet, template, out = args.worker
        run = {"ours": run_ours, "check": run_check, "naive": run_naive}[kind]
        print(json.dumps(run(Path(sheet), Path(template), Path(out))))
        return
    sizes = [2_000] if args.smoke else args.sizes
    template = DATA / "template.txt"
    DATA.mkdir(parents=True, exist_ok=True)
    template.write_text(TEMPLATE + "\n", encoding="utf-8")
    for rows in sizes:
        sheet = DATA / f"contacts-{rows}.xlsx"
        if not sheet.exists():
            t = time.perf_counter()
            generate(rows, sheet)
            print(f"generated {sheet.name} in {time.perf_counter() - t:.1f} s")
        ours = measure("ours", sheet, template)
        check = measure("check", sheet, template)
        naive = measure("naive", sheet, template) if rows <= max(args.naive_max, 2_000) else None
        print_table(rows, ours, check, naive)


if __name__ == "__main__":
    main()
