#!/usr/bin/env python3
"""Checks the JSONL of `spvit bench collectives` (ctest cli_bench_collectives_jsonl).

Every operation at every size is present, verified, and its algbw/busbw follow nccl-tests' definitions:
algbw = size / time, busbw = algbw * factor with factor 2(n-1)/n for all_reduce, (n-1)/n for all_gather,
reduce_scatter and all_to_all, 1 for send_recv.

usage: check_collectives_jsonl.py FILE RANKS MIN_BYTES MAX_BYTES FACTOR
"""
import json
import sys


def factor(op, n):
    if op == "all_reduce":
        return 2.0 * (n - 1) / n
    if op == "send_recv":
        return 1.0
    return (n - 1) / n


def main():
    path, n, lo, hi, f = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    rows = [json.loads(line) for line in open(path) if line.strip()]
    ops = ["all_gather", "reduce_scatter", "all_reduce", "all_to_all", "send_recv"]
    sizes = []
    s = lo
    while s <= hi:
        sizes.append(s)
        s *= f
    assert len(rows) == len(ops) * len(sizes), f"{len(rows)} rows, expected {len(ops)} ops x {len(sizes)} sizes"
    for op in ops:
        got = [r for r in rows if r["op"] == op]
        assert len(got) == len(sizes), f"{op}: {len(got)} rows for {len(sizes)} sizes"
        for r, asked in zip(got, sizes):
            assert r["ranks"] == n and r["verified"] is True, r
            assert r["size_bytes"] <= asked and r["size_bytes"] > asked // 2, (asked, r)
            if op != "send_recv":  # whole blocks per rank
                assert r["size_bytes"] % (4 * n) == 0, r
            algbw = r["size_bytes"] / (r["time_us"] * 1e-6) / 1e9
            assert abs(r["algbw_gbps"] - algbw) <= 1e-9 * max(1.0, algbw), (algbw, r)
            assert abs(r["bus_factor"] - factor(op, n)) < 1e-12, r
            assert abs(r["busbw_gbps"] - algbw * factor(op, n)) <= 1e-9 * max(1.0, algbw), r
            for key in ("machine", "date", "backend", "device", "dtype"):
                assert r[key], (key, r)
    print(f"{len(rows)} rows OK: {len(ops)} operations x {len(sizes)} sizes on {n} ranks")


if __name__ == "__main__":
    main()
