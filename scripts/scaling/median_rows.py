#!/usr/bin/python3
"""Keeps, of repeated `spvit bench step` rows of one configuration, the one with the median step time.

  scripts/scaling/median_rows.py RAW.jsonl OUT.jsonl

A configuration is what ran: strategy, grid, tokens, model, batch, precision, checkpointing. This VM's step times
vary by up to 1.5x between identical runs minutes apart (docs/scaling.md, "Validation"); the median of rounds
interleaved in time is the usual defence, and the row it keeps is a real measurement, not an average of several.
"""
import json
import sys


def key(r):
    return json.dumps([r["attention"], r["grid"], r["tokens"], r["model"], r["batch"], r["precision"],
                       r["checkpointing"]], sort_keys=True)


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    groups = {}
    with open(argv[0]) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                groups.setdefault(key(r), []).append(r)
    with open(argv[1], "w") as out:
        for rows in groups.values():
            rows.sort(key=lambda r: r["step_ms"])
            kept = dict(rows[(len(rows) - 1) // 2], rounds=len(rows),
                        round_step_ms=[round(r["step_ms"], 1) for r in rows])
            out.write(json.dumps(kept) + "\n")
    print(f"median_rows: {sum(len(g) for g in groups.values())} rows -> {len(groups)} configurations")


if __name__ == "__main__":
    main(sys.argv[1:])
