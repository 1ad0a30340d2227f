#!/usr/bin/python3
"""Scaling sweeps of the real training step (`spvit bench step --tokens`), from inside one allocation.

Kinds (docs/scaling.md):
  strong : fixed L tokens per sample, N_s = each of --ranks sequence ranks (grid 1xN)
  weak   : L/N_s fixed at --tokens-per-rank (L rounded to the nearest square: the synthetic image is square), 1xN
  data   : fixed L, N_d = each of --ranks data groups of one sequence rank (grid Nx1)
for each of --strategies. Every run appends one JSON line to --out: bench step's own row (step time, tokens/s,
time split, traffic per collective, peak memory) plus the sweep's kind, strategy, machine, date, commit, launcher
and the exact command, so a file mixing machines and commits stays readable.

The launcher is found from the environment: srun inside a Slurm allocation, jsrun inside LSF, mpirun otherwise
(with --oversubscribe when the ranks exceed this machine's cores; such rows say "oversubscribed": true).

  scripts/scaling/sweep.py --kind strong --tokens 1024 --ranks 1,2,4 --strategies lss-kv,ulysses,ring \
      --out sweep.jsonl -- --dim 64 --depth 2 --heads 4 --steps 3 --warmup 1
"""
import argparse
import datetime
import json
import math
import os
import shlex
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["strong", "weak", "data"], required=True)
    p.add_argument("--ranks", default="1,2,4", help="comma-separated rank counts")
    p.add_argument("--strategies", default="lss-kv", help="comma-separated model.attention values")
    p.add_argument("--tokens", type=int, default=1024, help="strong/data: tokens per sample (a square)")
    p.add_argument("--tokens-per-rank", type=int, default=256, help="weak: tokens per sequence rank")
    p.add_argument("--out", required=True, help="JSONL file the rows are appended to")
    p.add_argument("--spvit", default=os.path.join(ROOT, "build", "bin", "spvit"))
    p.add_argument("--launcher", choices=["auto", "srun", "jsrun", "mpirun"], default="auto")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per run before it is stopped")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="after --: passed to `spvit bench step`")
    a = p.parse_args(argv)
    a.ranks = [int(r) for r in a.ranks.split(",")]
    a.strategies = a.strategies.split(",")
    a.bench_args = [x for x in a.bench_args if x != "--"]
    if any(r < 1 for r in a.ranks):
        p.error("--ranks must be positive")
    return a


def launcher(kind):
    if kind != "auto":
        return kind
    if os.environ.get("SLURM_JOB_ID"):
        return "srun"
    if os.environ.get("LSB_JOBID"):
        return "jsrun"
    return "mpirun"


def launch_prefix(name, ranks):
    """The command that starts `ranks` ranks of one program, and whether they oversubscribe this machine."""
    cores = os.cpu_count() or 1
    if name == "srun":
        return ["srun", "--ntasks", str(ranks), "--kill-on-bad-exit=1"], False
    if name == "jsrun":
        return ["jsrun", "--nrs", str(ranks), "--tasks_per_rs", "1", "--cpu_per_rs", "1"], False
    prefix = ["mpirun", "-np", str(ranks), "--bind-to", "none"]
    over = ranks > cores
    if over:
        prefix.append("--oversubscribe")
    if os.geteuid() == 0:
        prefix.append("--allow-run-as-root")
    return prefix, over


def nearest_square(n):
    side = max(1, round(math.sqrt(n)))
    return side * side


def points(a):
    """(ranks, tokens, grid data, grid seq) of every run of the sweep."""
    for r in a.ranks:
        if a.kind == "strong":
            yield r, a.tokens, 1, r
        elif a.kind == "weak":
            yield r, nearest_square(a.tokens_per_rank * r), 1, r
        else:
            yield r, a.tokens, r, 1


def commit():
    """The source tree's commit, "-dirty" when code has uncommitted changes (docs/, where results go, aside)."""
    try:
        def git(*args):
            return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, check=True).stdout
        head = git("rev-parse", "--short=7", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs").strip()
        return head + ("-dirty" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_point(a, launch, strategy, ranks, tokens, data, seq):
    prefix, over = launch_prefix(launch, ranks)
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = os.path.join(tmp, "row.jsonl")
        command = prefix + [a.spvit, "bench", "step", "--tokens", str(tokens), "--set", f"model.attention={strategy}",
                            "--set", f"grid.data={data}", "--set", f"grid.seq={seq}", "--split",
                            "--out", rows_file] + a.bench_args
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        proc = subprocess.run(command, capture_output=True, text=True, timeout=a.timeout, env=env)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"sweep: {shlex.join(command)} failed with exit code {proc.returncode}")
        with open(rows_file) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        if row.get("ranks") != ranks or row.get("grid") != f"{data}x{seq}":
            # A launcher that starts N one-rank jobs instead of one N-rank job (a broken PMI wire-up) lands here.
            raise SystemExit(f"sweep: asked for {ranks} ranks as grid {data}x{seq}, the job reports "
                             f"{row.get('ranks')} ranks as grid {row.get('grid')} ({len(rows)} result rows): check "
                             "the launcher's MPI/PMI setup")
    if len(rows) != 1:
        raise SystemExit(f"sweep: expected one result row from {shlex.join(command)}, got {len(rows)}")
    return rows[0], command, over


def main(argv):
    a = parse_args(argv)
    if not os.access(a.spvit, os.X_OK):
        raise SystemExit(f"sweep: {a.spvit} is not an executable spvit (build it, or pass --spvit)")
    launch = launcher(a.launcher)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    common = {"sweep": a.kind, "machine": socket.gethostname(), "cores": os.cpu_count(), "commit": commit(),
              "launcher": launch}
    for strategy in a.strategies:
        for ranks, tokens, data, seq in points(a):
            row, command, over = run_point(a, launch, strategy, ranks, tokens, data, seq)
            row.update(common)
            row.update({"strategy": strategy, "oversubscribed": over, "command": shlex.join(command),
                        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
            with open(a.out, "a") as f:
                f.write(json.dumps(row, sort_keys=True) + "\n")
            print(f"{a.kind:6} {strategy:8} ranks={ranks} grid={data}x{seq} tokens={tokens}: "
                  f"{row['step_ms']:.1f} ms/step, {row['tokens_per_s']:.0f} tokens/s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
