"""The load generator: a separate process of asyncio clients (aiohttp) against a running hub.

    python -m bench.load search  --base URL --concurrency 32 --seconds 20 --input visit-codes.txt
    python -m bench.load baseline --base URL --concurrency 32 --seconds 20 --input row-ids.txt
    python -m bench.load book    --base URL --concurrency 64 --seconds 20 --input slot-ids.txt
    python -m bench.load contend --base URL --concurrency 1000 --input ten-slot-ids.txt
    python -m bench.load book    ... --header "Authorization: Bearer TOKEN"   # an operator

Prints one JSON object: requests, statuses, throughput and latency percentiles, and the CPU
time this process used (to tell how much of the two cores the load itself took).
"""

import argparse
import asyncio
import itertools
import json
import resource
import sys
import time
import uuid

import aiohttp

# The hub runs in production mode behind a TLS proxy: say what that proxy would.
HEADERS = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
PATIENT = {
    "last_name": "Charge",
    "first_name": "Banc",
    "birth_date": "1970-01-01",
    "phone": "0612345678",
}


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _run(args) -> dict:
    for header in args.header:
        name, _colon, value = header.partition(":")
        HEADERS[name.strip()] = value.strip()
    with open(args.input, encoding="utf-8") as lines:
        items = [line.strip() for line in lines if line.strip()]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    codes: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=300)
    source = iter(items) if args.mode not in {"search", "baseline"} else itertools.cycle(items)
    stop_at = time.perf_counter() + args.seconds

    async def one(session: aiohttp.ClientSession, item: str) -> None:
        started = time.perf_counter()
        if args.mode in {"search", "baseline"}:
            url = f"{args.base}/api/v1/slots?visit_type={item}&limit=20"
            if args.mode == "baseline":  # one row read by its key, as JSON: the floor
                url = f"{args.base}/bench/baseline/{item}"
            async with session.get(url, headers=HEADERS) as answer:
                await answer.read()
                status = answer.status
        else:
            body = json.dumps({"slot": item, "patient": PATIENT})
            headers = {**HEADERS, "Idempotency-Key": uuid.uuid4().hex}
            async with session.post(
                f"{args.base}/api/v1/appointments", data=body, headers=headers
            ) as answer:
                payload = await answer.json(content_type=None)
                status = answer.status
                if status != 201:
                    codes[payload.get("code", "?")] = codes.get(payload.get("code", "?"), 0) + 1
        latencies.append(time.perf_counter() - started)
        statuses[status] = statuses.get(status, 0) + 1

    async def worker(session: aiohttp.ClientSession) -> None:
        while args.mode == "contend" or time.perf_counter() < stop_at:
            try:
                item = next(source)
            except StopIteration:
                return
            await one(session, item)
            if args.mode == "contend":
                return

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if args.mode == "contend":
            # Every client at once, each for one of the few slots.
            await asyncio.gather(*(one(session, item) for item in items))
        else:
            await asyncio.gather(*(worker(session) for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "mode": args.mode,
        "concurrency": args.concurrency if args.mode != "contend" else len(items),
        "seconds": round(elapsed, 3),
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "error_codes": codes,
        "per_second": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            name: round(1000 * value, 2) if value is not None else None
            for name, value in (
                ("p50", percentile(latencies, 0.50)),
                ("p95", percentile(latencies, 0.95)),
                ("p99", percentile(latencies, 0.99)),
            )
        },
        "load_generator_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["search", "baseline", "book", "contend"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--input", required=True)
    parser.add_argument(
        "--header", action="append", default=[], help="NAME: VALUE sent with every request"
    )
    args = parser.parse_args(argv)
    json.dump(asyncio.run(_run(args)), sys.stdout)


if __name__ == "__main__":
    main()
