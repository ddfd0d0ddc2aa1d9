"""Benchmark `send` against the sandbox with latency: our journalled, chunked, concurrent path
beside the one-POST-per-message loop a copied script would run, in the same run.

    python benchmarks/bench_send.py                       # 150 ms; 20,000 ours at 4 and 8
    python benchmarks/bench_send.py --latency 0.02 --concurrency 4 --naive 500

The sandbox runs in its own process, so the memory figure is the client's alone: the peak
resident memory while sending (sampled every 10 ms) above what it held with the sheet loaded.
The naive loop is too slow to run at full size (one round trip per message), so it runs on
fewer messages and the figure compared is throughput (messages per second). The time spent in
journal commits (start_chunk + finish_chunk, one transaction each per chunk) is timed apart.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from pipeline import job as batch
from pipeline.providers.textlocal.client import TextlocalClient
from pipeline.sandbox.server import Faults, SandboxServer, read_outbox
from pipeline.sending.journal import Journal

PAGE = 4096


def write_sheet(path: Path, rows: int) -> None:
    """A CSV of `rows` distinct valid mobile numbers."""
    numbers = random.Random(5).sample(range(10**8), rows)
    lines = ["Name,Mobile"] + [f"Name {i},98{n:08d}" for i, n in enumerate(numbers)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Sample resident memory every 10 ms; yields a dict that gets `peak_mb` at the end."""
    found = {"peak_mb": rss_mb()}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            found["peak_mb"] = max(found["peak_mb"], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        done.set()
        sampler.join()
        found["peak_mb"] = max(found["peak_mb"], rss_mb())


@contextmanager
def journal_timer() -> Iterator[dict[str, float]]:
    """Time every journal commit of a chunk (both its `sending` and its outcome rows)."""
    spent = {"seconds": 0.0, "commits": 0}
    originals = {name: getattr(Journal, name) for name in ("start_chunk", "finish_chunk")}

    def timed(method):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - started
                spent["commits"] += 1

        return wrapper

    for name, method in originals.items():
        setattr(Journal, name, timed(method))
    try:
        yield spent
    finally:
        for name, method in originals.items():
            setattr(Journal, name, method)


def ours(work: Path, url: str, rows: int, concurrency: int) -> dict:
    """smsbatch's send: bulk_json chunks of 500, `concurrency` in flight, journal on."""
    sheet, template = work / f"ours-{concurrency}.csv", work / "t.txt"
    write_sheet(sheet, rows)
    template.write_text("Hi {Name}, your order has shipped.\n", encoding="utf-8")
    prepared = batch.load(sheet, template)
    loaded = rss_mb()
    with TextlocalClient("bench", url) as client, journal_timer() as journal, peak_rss() as memory:
        started = time.perf_counter()
        result = batch.send(
            prepared,
            client,
            provider="sandbox",
            sender="TXTLCL",
            concurrency=concurrency,
            journal=work / f"journal-{concurrency}.db",
            out=work / f"results-{concurrency}.xlsx",
        )
        seconds = time.perf_counter() - started
    sent = result.counts["sent"]
    assert sent == rows, result.counts
    return {
        "messages": sent,
        "seconds": seconds,
        "rss_growth_mb": memory["peak_mb"] - loaded,
        "journal_seconds": journal["seconds"],
        "commits": journal["commits"],
    }


def naive(url: str, rows: int) -> dict:
    """One `requests.post` to /send/ per message, no session, no journal."""
    numbers = random.Random(6).sample(range(10**8), rows)
    started = time.perf_counter()
    for i, n in enumerate(numbers):
        reply = requests.post(
            url + "send/",
            timeout=30,
            data={
                "apikey": "bench",
                "numbers": f"9197{n:08d}",
                "sender": "TXTLCL",
                "message": f"Hi Name {i}, your order has shipped.",
            },
        )
        assert reply.json()["status"] == "success"
    return {"messages": rows, "seconds": time.perf_counter() - started}


def serve(outbox: str, latency: float, urls: multiprocessing.Queue, stop: threading.Event) -> None:
    """The sandbox, in a process of its own, until `stop` is set."""
    with SandboxServer(outbox, balance=10**9, faults=Faults(latency=latency)) as server:
        urls.put(server.url)
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.15, help="sandbox seconds/request")
    parser.add_argument("--messages", type=int, default=20_000, help="messages for our path")
    parser.add_argument("--naive", type=int, default=100, help="messages for the naive loop")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        urls, stop = spawn.Queue(), spawn.Event()
        server = spawn.Process(
            target=serve, args=(str(work / "outbox.sqlite"), args.latency, urls, stop)
        )
        server.start()
        try:
            url = urls.get(timeout=60)
            mine = {c: ours(work, url, args.messages, c) for c in args.concurrency}
            theirs = naive(url, args.naive)
        finally:
            stop.set()
            server.join(timeout=30)
        in_outbox = len(read_outbox(work / "outbox.sqlite"))
    rate_theirs = theirs["messages"] / theirs["seconds"]
    print(
        f"sandbox latency {args.latency * 1000:.0f} ms per request; "
        f"{in_outbox:,} messages in the outbox"
    )
    print(
        f"{'path':<42}{'messages':>9}{'seconds':>9}{'msg/s':>9}{'ratio':>8}"
        f"{'journal s':>11}{'memory MB':>11}"
    )
    for concurrency, run in mine.items():
        rate = run["messages"] / run["seconds"]
        label = f"smsbatch (bulk_json 500, concurrency {concurrency})"
        share = run["journal_seconds"] / run["seconds"]
        print(
            f"{label:<42}{run['messages']:>9,}{run['seconds']:>9.2f}{rate:>9,.0f}"
            f"{rate / rate_theirs:>7.0f}x{run['journal_seconds']:>6.2f} {f'({share:.0%})':>5}"
            f"{run['rss_growth_mb']:>11.0f}"
        )
    print(
        f"{'one POST per message':<42}{theirs['messages']:>9,}{theirs['seconds']:>9.2f}"
        f"{rate_theirs:>9,.0f}{'1x':>8}"
    )
    print(
        "journal s: time in the journal's per-chunk commits (share of the send); memory MB: "
        "the client's peak resident memory while sending, above the loaded sheet"
    )


if __name__ == "__main__":
    main()
