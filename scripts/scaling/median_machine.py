#!/usr/bin/python3
"""Combines machine files calibrated at different times into one: the median of every measured number.

  scripts/scaling/median_machine.py OUT.yaml CALIBRATED.yaml...

Every {value, source} becomes the median value, its source saying so and listing the values; attention_curve points
take the median rate at each size. Used by measure-validation.sh, which calibrates once per measurement round: on
this VM a microbenchmark's rate moves by up to 3x over an hour (docs/scaling.md, "Validation"), so one calibration
would tie the model to one moment.
"""
import statistics
import sys

import yaml


def sourced(nodes):
    values = [n["value"] for n in nodes]
    source = nodes[0]["source"]
    if len(set(values)) > 1:
        source += (f"; median of {len(values)} calibrations interleaved with the validation rounds "
                   f"({', '.join(f'{v:.4g}' for v in values)})")
    return {"value": statistics.median(values), "source": source}


def merge(docs):
    out = {}
    for key, first in docs[0].items():
        if isinstance(first, dict) and "value" in first:
            out[key] = sourced([d[key] for d in docs])
        elif key == "attention_curve":
            out[key] = {}
            for precision, curve in first.items():
                points = [d[key][precision]["points"] for d in docs]
                out[key][precision] = {
                    "source": curve["source"] + (f"; median rate of {len(docs)} calibrations at each size"
                                                 if len(docs) > 1 else ""),
                    "points": [[p[0], statistics.median(q[i][1] for q in points)] for i, p in enumerate(points[0])]}
        elif isinstance(first, dict):
            out[key] = merge([d[key] for d in docs])
        else:
            out[key] = first
    return out


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    docs = []
    for path in argv[1:]:
        with open(path) as f:
            docs.append(yaml.safe_load(f))
    # A number some calibrations lack (the decoder's fixed time when its fit found none) is left out.
    common = [k for k in docs[0] if all(k in d for d in docs)]
    docs = [{k: d[k] for k in common} for d in docs]
    with open(argv[0], "w") as f:
        yaml.safe_dump(merge(docs), f, sort_keys=False, width=1000)
    print(f"median_machine: {len(docs)} calibrations -> {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
