"""Benchmark `send` against the sandbox with latency: our journalled, chunked, concurrent path
beside the one-POST-per-message loop a copied script would run, in the same process.

    python benchmarks/bench_send.py                       # 20,000 ours, 500 naive, 20 ms
    python benchmarks/bench_send.py --latency 0.15 --messages 20000 --naive 200

The naive loop is too slow to run at full size (one round trip per message), so it runs on
fewer messages and the figure compared is throughput (messages per second).
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

import requests

from pipeline import batch
from pipeline.providers.sandbox import Faults, SandboxServer, read_outbox
from pipeline.providers.textlocal import TextlocalClient


def write_sheet(path: Path, rows: int) -> None:
    """A CSV of `rows` distinct valid mobile numbers."""
    numbers = random.Random(5).sample(range(10**8), rows)
    lines = ["Name,Mobile"] + [f"Name {i},98{n:08d}" for i, n in enumerate(numbers)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def ours(work: Path, server: SandboxServer, rows: int, concurrency: int) -> dict:
    """smsbatch's send: bulk_json chunks of 500, `concurrency` in flight, journal on."""
    sheet, template = work / "ours.csv", work / "t.txt"
    write_sheet(sheet, rows)
    template.write_text("Hi {Name}, your order has shipped.\n", encoding="utf-8")
    prepared = batch.load(sheet, template)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with TextlocalClient("bench", server.url) as client:
        started = time.perf_counter()
        result = batch.send(prepared, client, provider="sandbox", sender="TXTLCL",
                            concurrency=concurrency, journal=work / "journal.sqlite",
                            out=work / "results.xlsx")
        seconds = time.perf_counter() - started
    sent = result.counts["sent"]
    assert sent == rows, result.counts
    return {"messages": sent, "seconds": seconds,
            "rss_growth_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            - rss_before}


def naive(server: SandboxServer, rows: int) -> dict:
    """One `requests.post` to /send/ per message, no session, no journal."""
    numbers = random.Random(6).sample(range(10**8), rows)
    started = time.perf_counter()
    for i, n in enumerate(numbers):
        reply = requests.post(server.url + "send/", timeout=30, data={
            "apikey": "bench", "numbers": f"9197{n:08d}", "sender": "TXTLCL",
            "message": f"Hi Name {i}, your order has shipped."})
        assert reply.json()["status"] == "success"
    return {"messages": rows, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.02, help="sandbox seconds/request")
    parser.add_argument("--messages", type=int, default=20_000, help="messages for our path")
    parser.add_argument("--naive", type=int, default=500, help="messages for the naive loop")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with SandboxServer(work / "outbox.sqlite", balance=10**9,
                           faults=Faults(latency=args.latency)) as server:
            mine = ours(work, server, args.messages, args.concurrency)
            theirs = naive(server, args.naive)
            in_outbox = len(read_outbox(work / "outbox.sqlite"))
    rate_mine = mine["messages"] / mine["seconds"]
    rate_theirs = theirs["messages"] / theirs["seconds"]
    print(f"sandbox latency {args.latency * 1000:.0f} ms per request; "
          f"{in_outbox:,} messages in the outbox")
    print(f"{'path':<40}{'messages':>10}{'seconds':>10}{'msg/s':>10}")
    print(f"{'smsbatch (bulk_json 500, concurrency ' + str(args.concurrency) + ')':<40}"
          f"{mine['messages']:>10,}{mine['seconds']:>10.2f}{rate_mine:>10,.0f}")
    print(f"{'one POST per message':<40}{theirs['messages']:>10,}{theirs['seconds']:>10.2f}"
          f"{rate_theirs:>10,.0f}")
    print(f"throughput ratio: {rate_mine / rate_theirs:.0f}x; "
          f"client memory growth while sending: {mine['rss_growth_mb']:.0f} MB")


if __name__ == "__main__":
    main()
