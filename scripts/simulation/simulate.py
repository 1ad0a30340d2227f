#!/usr/bin/python3
"""Simulated scaling of spvit's encoder at 64-4,096 ranks with SimGrid SMPI (docs/scaling.md, "Simulation").

  scripts/simulation/simulate.py --out docs/scaling/simulated.jsonl [--quick] [--spvit build/bin/spvit]
                                 [--ranks 64,256,1024,4096] [--seqs 8,16,64] [--platforms NAME,NAME]

1. records the strategies' own collectives with `spvit bench step --trace` (ViT-B/16 width, one block, fp32, L=576
   tokens on 2, 3 and 4 local ranks: the replay fits each call's count and bytes per token against the group size
   and checks the fit on the third);
2. builds simulation/replay.cpp with Debian's smpicxx (libsimgrid-dev) and writes the two platforms
   (scripts/simulation/platforms.py: a Frontier-like dragonfly, a Summit-like fat tree);
3. replays one encoder layer of a 65,536-token sample (ViT-B/16: E=768, 12 heads; depth 12 by extrapolation) for each
   strategy, sequence-group size N_s in {8, 16, 64} (ulysses only where N_s <= 12 heads) and 64-4,096 ranks (N_d =
   ranks / N_s data groups), with compute injected at the machine file's fp32 roofline rates (machines/frontier.yaml,
   machines/summit.yaml), plus the depth-12 gradient all-reduce over every rank;
4. appends one row per simulation, with `spvit plan`'s analytic prediction of the same encoder time beside it.
The layer is replayed on one block of whole switches and sequence groups (simulated_ranks), the gradient all-reduce on
every rank. --quick: 64 and 256 ranks, N_s 8 and 16, each block also checked against the whole machine (the CI
test). The full sweep took the time docs/scaling.md states.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import platforms  # noqa: E402

STRATEGIES = ["lss-kv", "lss-x", "ulysses", "ring"]
MODEL = ["--dim", "768", "--heads", "12", "--depth", "1", "--patch", "16", "--decoder-width", "4"]
TRACE_TOKENS = 576  # 24²: divisible by 2, 3 and 4 ranks
TOKENS = 65536
DEPTH = 12
SCALE = 1000  # messages and bandwidths both divided by it: same times under CM02, small simulator buffers
# network/optim:Full re-solves the max-min sharing of all flows at every event instead of SimGrid's default lazy
# updates: with thousands of flows starting and ending together (a ring step on every rank) it halved the wall time of
# a 512-rank lss-kv replay (13.6 -> 7.4 s); simulated times agree within 0.6%. The replay keeps no mutable globals,
# so SMPI need not privatize them per rank.
SIMGRID = ["--cfg=smpi/simulate-computation:no", "--cfg=network/model:CM02", "--cfg=network/optim:Full",
           "--cfg=smpi/coll-selector:mpich", "--cfg=smpi/privatization:no", "--cfg=smpi/display-timing:no",
           "--log=root.thres:critical"]
# The gradient all-reduce over every rank runs Rabenseifner's algorithm (reduce-scatter by recursive halving, then
# all-gather by recursive doubling), what MPICH's selector picks for large commutative reductions on a flat
# communicator. Left to the selector, SMPI first builds its node-aware two-level variant, whose simulation took 29 s
# of wall time at 1,024 ranks and 3 s at 512 (rab_rdb: 1.4 s and 0.6 s; 31 s at 4,096): it would not fit the hour.
GRAD_ALLREDUCE = ["--cfg=smpi/allreduce:rab_rdb"]
MACHINE_OF = {"frontier-dragonfly": "frontier", "summit-fattree": "summit"}


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit(f"simulate: {' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def record_traces(spvit, work):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    traces = {}
    for strategy in STRATEGIES:
        for ranks in (2, 3, 4):
            path = os.path.join(work, f"trace-{strategy}-{ranks}.jsonl")
            run(["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none", "--allow-run-as-root", spvit,
                 "bench", "step", "--tokens", str(TRACE_TOKENS), *MODEL, "--steps", "1", "--warmup", "1",
                 "--set", f"model.attention={strategy}", "--trace", path], env=env)
            traces[(strategy, ranks)] = path
    print(f"simulate: recorded {len(traces)} traces")
    return traces


def rates(machine):
    with open(os.path.join(ROOT, "machines", machine + ".yaml")) as f:
        m = yaml.safe_load(f)
    return {"matmul": m["matmul_tflops"]["fp32"]["value"], "attention": m["attention_tflops"]["fp32"]["value"],
            "bandwidth": m["memory_bandwidth_gbs"]["value"]}


def rate_args(r):
    return ["--matmul-tflops", str(r["matmul"]), "--attention-tflops", str(r["attention"]),
            "--bandwidth-gbs", str(r["bandwidth"])]


def simulated_ranks(name, seq, target):
    """The simulated machine's rank count near `target`, and the ranks one encoder layer is replayed on.

    A layer's calls stay inside a sequence group (consecutive ranks). A block of consecutive ranks that holds whole
    sequence groups and fills whole switches uses links no other block uses (platforms.py, nodes_per_switch), so
    every block replays the layer in the same simulated time and one block stands for the machine; the gradient
    all-reduce, which spans every rank, is replayed on all of them. Machines larger than one block are rounded to
    whole blocks. ctest simulation_quick checks a block against the whole machine."""
    p = platforms.PLATFORMS[name]
    per_node = p["ranks_per_node"]
    block = math.lcm(seq, p["nodes_per_switch"] * per_node)
    if target <= block or block > p["nodes_per_group"] * per_node:
        # whole sequence groups (on the fat tree whole 6-GPU nodes too), replayed whole
        unit = seq if per_node == 8 else per_node * seq
        ranks = max(seq, (target // unit if per_node == 8 else round(target / unit)) * unit)
        return ranks, ranks
    ranks = max(block, round(target / block) * block)
    if ranks > p["nodes"] * per_node:
        ranks -= block
    return ranks, block


class Replayer:
    """Runs simulation/replay.cpp under smpirun: one encoder layer on a block (simulated_ranks), the gradient
    all-reduce on the whole machine, each once — a block's layer is the same for every machine it is part of, and the
    all-reduce the same for every strategy and N_s — and combines them into one row per simulated machine."""

    def __init__(self, work, replay, traces, verify_blocks):
        self.work, self.replay, self.traces, self.verify_blocks = work, replay, traces, verify_blocks
        self.layers = {}  # (platform, strategy, N_s, block ranks) -> the layer's row
        self.grads = {}  # (platform, ranks) -> the all-reduce's row

    def smpirun(self, ranks, name, strategy, seq, part, simgrid=(), replay_args=()):
        cmd = ["smpirun", "-np", str(ranks), "-platform", os.path.join(self.work, name + ".xml"), "-hostfile",
               os.path.join(self.work, name + ".hosts"), *SIMGRID, *simgrid, self.replay, "--part", part,
               "--bytes-scale", str(SCALE), "--trace", self.traces[(strategy, 2)],
               "--trace", self.traces[(strategy, 4)], "--seq", str(seq), "--depth", str(DEPTH),
               "--tokens-per-rank", str(TOKENS // seq), *rate_args(rates(MACHINE_OF[name])), "--platform-name", name,
               *replay_args]
        out = run(cmd)
        return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])

    def row(self, name, strategy, seq, target):
        ranks, block = simulated_ranks(name, seq, target)
        key = (name, strategy, seq, block)
        if key not in self.layers:
            self.layers[key] = self.smpirun(block, name, strategy, seq, "layer",
                                            replay_args=("--check", self.traces[(strategy, 3)]))
        row = dict(self.layers[key])
        if self.verify_blocks and block < ranks:  # the block against the whole machine
            whole = self.smpirun(ranks, name, strategy, seq, "layer")
            row["whole_machine_layer_ms"] = whole["layer_ms"]
            if abs(whole["layer_ms"] - row["layer_ms"]) > 1e-3 * whole["layer_ms"]:
                raise SystemExit(f"simulate: {name} {strategy} N_s={seq}: a block of {block} ranks took "
                                 f"{row['layer_ms']} ms per layer, all {ranks} {whole['layer_ms']}")
        if (name, ranks) not in self.grads:
            self.grads[(name, ranks)] = self.smpirun(ranks, name, strategy, seq, "grad", simgrid=GRAD_ALLREDUCE)
        grad = self.grads[(name, ranks)]
        if grad["grad_bytes"] != row["grad_bytes"]:
            raise SystemExit(f"simulate: {strategy} has other gradient bytes than the cached all-reduce")
        row.update(ranks=ranks, data=ranks // seq, layer_ranks=block, grad_allreduce_ms=grad["grad_allreduce_ms"],
                   step_ms=DEPTH * row["layer_ms"] + grad["grad_allreduce_ms"])
        del row["part"]
        return row


def analytic(spvit, machine, ranks, seq, strategy):
    """spvit plan's encoder time for the same run: matmuls + attention + element-wise + communication."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        side = 16 * int(TOKENS ** 0.5)
        subprocess.run([spvit, "plan", "--machine", os.path.join(ROOT, "machines", machine + ".yaml"),
                        "--ranks", str(ranks), "--top", "1", "--out", out.name, "--set", "model.dim=768",
                        "--set", "model.heads=12", "--set", f"model.depth={DEPTH}", "--set", "model.patch=16",
                        "--set", "model.pos_encoding=coords", "--set", f"data.size={side}"],
                       capture_output=True, text=True)
        for line in open(out.name):
            r = json.loads(line)
            if r["strategy"] == strategy and r["grid"] == f"{ranks // seq}x{seq}" and not r["checkpointing"]:
                s = r["split_ms"]
                seq_comm = sum(c["ms"] for c in r["collectives"] if c["group"] == "seq")
                grad = sum(c["ms"] for c in r["collectives"] if c["group"] != "seq")
                return {"encoder_ms": s["linear"] + s["attention"] + s["elementwise"] + seq_comm + grad,
                        "layer_comm_ms": seq_comm / DEPTH, "grad_ms": grad}
    return None


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--spvit", default=os.path.join(ROOT, "build", "bin", "spvit"))
    p.add_argument("--work", default=None, help="folder for traces, the replay binary and platforms")
    p.add_argument("--quick", action="store_true",
                   help="64 and 256 ranks, N_s 8 and 16, every block checked against its whole machine (ctest)")
    p.add_argument("--verify-blocks", action="store_true",
                   help="also replay each layer on the whole machine and require the block's time")
    p.add_argument("--ranks", default="64,256,1024,4096", help="simulated rank counts (rounded to whole nodes)")
    p.add_argument("--seqs", default="8,16,64", help="sequence-group sizes N_s")
    p.add_argument("--platforms", default="frontier-dragonfly,summit-fattree", help="platforms.py names")
    a = p.parse_args(argv)
    for tool in ("smpicxx", "smpirun"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            raise SystemExit(f"simulate: {tool} not found: install Debian's libsimgrid-dev (scripts/install-deps.sh)")
    if not os.access(a.spvit, os.X_OK):
        raise SystemExit(f"simulate: {a.spvit} is not an executable spvit (build it, or pass --spvit)")
    work = a.work or tempfile.mkdtemp(prefix="spvit-sim-")
    os.makedirs(work, exist_ok=True)
    replay = os.path.join(work, "replay")
    run(["smpicxx", "-O2", "-std=c++17", "-o", replay, os.path.join(ROOT, "simulation", "replay.cpp")])
    platforms.write(work, SCALE)
    traces = record_traces(a.spvit, work)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    ranks_list = [64, 256] if a.quick else [int(x) for x in a.ranks.split(",")]
    seqs = [8, 16] if a.quick else [int(x) for x in a.seqs.split(",")]
    names = a.platforms.split(",")
    a.verify_blocks = a.verify_blocks or a.quick
    started = time.time()
    replayer = Replayer(work, replay, traces, a.verify_blocks)
    for name in names:
        for seq in seqs:
            for strategy in STRATEGIES:
                if strategy == "ulysses" and seq > 12:
                    continue  # Ulysses splits the 12 heads over the group
                for target in ranks_list:
                    t0 = time.time()
                    row = replayer.row(name, strategy, seq, target)
                    row["analytic"] = analytic(a.spvit, MACHINE_OF[name], row["ranks"], seq, strategy)
                    row["wall_s"] = round(time.time() - t0, 1)
                    with open(a.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    an = row["analytic"]["encoder_ms"] if row["analytic"] else float("nan")
                    print(f"{name:18s} {strategy:8s} ranks={row['ranks']:5d} seq={seq:3d}: simulated "
                          f"{row['step_ms']:9.1f} ms (layer comm {row['layer_comm_ms']:7.2f} ms on "
                          f"{row['layer_ranks']} ranks, grad {row['grad_allreduce_ms']:7.1f} ms), analytic {an:9.1f} ms"
                          f"  [{row['wall_s']} s]", flush=True)
    print(f"simulate: {time.time() - started:.0f} s of simulation")


if __name__ == "__main__":
    main(sys.argv[1:])
