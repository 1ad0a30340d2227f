#!/usr/bin/python3
"""Figures of scaling sweeps (scripts/scaling/sweep.py JSONL) as PNGs, with Debian's python3-matplotlib.

  scripts/scaling/plot.py sweep.jsonl [more.jsonl ...] --out-dir figures/

Writes, for each sweep kind present (strong, weak, data):
  KIND_speedup.png    speedup T(1)/T(N) and parallel efficiency speedup/N against ranks, one line per strategy
                      (weak: efficiency T(1)/T(N) — the work per rank is fixed, so ideal is a flat 1)
  KIND_split.png      the step's time split (bench step --split phases) as stacked bars per strategy and rank count
  KIND_bytes.png      bytes sent + received per rank and step (all communicators) against ranks, per strategy
  KIND_memory.png     peak memory per rank against ranks, per strategy
and, for rows of scripts/simulation/simulate.py ("simulated"):
  simulated_PLATFORM.png  simulated step time against ranks per strategy and N_s, `spvit plan`'s analytic encoder
                          time dashed beside it
and, for rows that `spvit plan --validate --out` gave a prediction ("predicted_ms"):
  model_vs_measured.png  predicted against measured step time per row (log-log), the ±25% band, per strategy,
                         with the median absolute error in the title
Rows from oversubscribed runs (more ranks than cores) are drawn hollow and the title says so. Prints one line per
figure; exits non-zero when a file has no usable rows.
"""
import argparse
import collections
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SystemExit(f"plot: {path}:{n} is not JSON: {e}")
                if ("sweep" in row or row.get("simulated")) and "step_ms" in row:
                    rows.append(row)
    if not rows:
        raise SystemExit(f"plot: no sweep rows (with 'sweep' and 'step_ms') in {', '.join(paths)}")
    return rows


def by_strategy(rows):
    """strategy -> rows sorted by ranks (the last row wins when a point was measured twice)."""
    groups = collections.defaultdict(dict)
    for r in rows:
        groups[r["strategy"]][r["ranks"]] = r
    return {s: [pts[k] for k in sorted(pts)] for s, pts in sorted(groups.items())}


def label(kind, rows):
    machines = sorted({r["machine"] for r in rows})
    over = any(r.get("oversubscribed") for r in rows)
    text = f"{kind} scaling on {', '.join(machines)}"
    return text + (" (hollow: oversubscribed, more ranks than cores)" if over else "")


def marker_style(row):
    return {"markerfacecolor": "none"} if row.get("oversubscribed") else {}


def plot_speedup(kind, groups, title, path):
    fig, (ax_s, ax_e) = plt.subplots(1, 2, figsize=(10, 4))
    for strategy, pts in groups.items():
        base = pts[0]
        ranks = [p["ranks"] for p in pts]
        speedup = [base["step_ms"] / p["step_ms"] for p in pts]
        if kind == "weak":
            efficiency = speedup
        else:
            efficiency = [s * base["ranks"] / r for s, r in zip(speedup, ranks)]
        line = ax_s.plot(ranks, speedup, "-", label=strategy)[0]
        ax_e.plot(ranks, efficiency, "-", color=line.get_color(), label=strategy)
        for p, s, e in zip(pts, speedup, efficiency):
            ax_s.plot(p["ranks"], s, "o", color=line.get_color(), **marker_style(p))
            ax_e.plot(p["ranks"], e, "o", color=line.get_color(), **marker_style(p))
    all_ranks = sorted({p["ranks"] for pts in groups.values() for p in pts})
    if kind != "weak":
        ax_s.plot(all_ranks, [r / all_ranks[0] for r in all_ranks], ":", color="gray", label="ideal")
    ax_e.axhline(1.0, linestyle=":", color="gray")
    ax_s.set(xlabel="ranks", ylabel="speedup T(first)/T(N)", title="speedup")
    ax_e.set(xlabel="ranks", ylabel="parallel efficiency", title="efficiency", ylim=(0, None))
    for ax in (ax_s, ax_e):
        ax.set_xticks(all_ranks)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_split(groups, title, path):
    bars = [(s, p) for s, pts in groups.items() for p in pts if p.get("split_ms")]
    if not bars:
        return False
    phases = []
    for _, p in bars:
        for name in p["split_ms"]:
            if name not in phases:
                phases.append(name)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(bars) + 2) + 3, 4))
    colours = plt.get_cmap("tab20").colors
    bottoms = [0.0] * len(bars)
    for i, phase in enumerate(phases):
        heights = [p["split_ms"].get(phase, 0.0) for _, p in bars]
        ax.bar(range(len(bars)), heights, bottom=bottoms, label=phase, color=colours[i % len(colours)])
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([f"{s}\nN={p['ranks']}" for s, p in bars], fontsize=7)
    ax.set(ylabel="ms per step", title="time split per phase")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def traffic_bytes(row):
    return sum(op["sent_bytes"] + op["received_bytes"] for op in row.get("comm_per_step", {}).values())


def plot_per_rank(groups, value, ylabel, heading, title, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, pts in groups.items():
        line = ax.plot([p["ranks"] for p in pts], [value(p) for p in pts], "-", label=strategy)[0]
        for p in pts:
            ax.plot(p["ranks"], value(p), "o", color=line.get_color(), **marker_style(p))
    ax.set_xticks(sorted({p["ranks"] for pts in groups.values() for p in pts}))
    ax.set(xlabel="ranks", ylabel=ylabel, title=heading)
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_validation(rows, path):
    rows = [r for r in rows if "predicted_ms" in r]
    if not rows:
        return False
    errors = sorted(abs(r["predicted_ms"] - r["step_ms"]) / r["step_ms"] for r in rows)
    k = len(errors)
    median = errors[k // 2] if k % 2 else 0.5 * (errors[k // 2 - 1] + errors[k // 2])
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo = min(min(r["step_ms"], r["predicted_ms"]) for r in rows) * 0.7
    hi = max(max(r["step_ms"], r["predicted_ms"]) for r in rows) * 1.4
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="predicted = measured")
    ax.fill_between([lo, hi], [lo * 0.75, hi * 0.75], [lo * 1.25, hi * 1.25], color="0.85", label="±25%")
    every = collections.defaultdict(list)  # all rows: several token counts per strategy and rank count
    for r in rows:
        every[r["strategy"]].append(r)
    for strategy, pts in sorted(every.items()):
        line = ax.plot([], [], "o", label=strategy)[0]
        for p in pts:
            ax.plot(p["step_ms"], p["predicted_ms"], "o", color=line.get_color(), **marker_style(p))
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured step ms",
           ylabel="predicted step ms (spvit plan)")
    ax.legend(fontsize=8)
    machines = sorted({r.get("machine", "?") for r in rows})
    ax.set_title(f"model vs measurement: {k} steps, median |error| {100 * median:.0f}%\n"
                 f"{', '.join(machines)}; hollow = oversubscribed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_simulated(rows, out_dir):
    written = []
    rows = [r for r in rows if r.get("simulated")]
    for platform in sorted({r["platform"] for r in rows}):
        mine = [r for r in rows if r["platform"] == platform]
        seqs = sorted({r["seq"] for r in mine})
        fig, axes = plt.subplots(1, len(seqs), figsize=(4.2 * len(seqs), 4), squeeze=False)
        for ax, seq in zip(axes[0], seqs):
            for strategy in sorted({r["strategy"] for r in mine}):
                pts = sorted((r for r in mine if r["seq"] == seq and r["strategy"] == strategy), key=lambda r: r["ranks"])
                if not pts:
                    continue
                line = ax.plot([p["ranks"] for p in pts], [p["step_ms"] for p in pts], "o-", label=strategy)[0]
                analytic = [(p["ranks"], p["analytic"]["encoder_ms"]) for p in pts if p.get("analytic")]
                if analytic:
                    ax.plot(*zip(*analytic), "--", color=line.get_color(), alpha=0.6)
            ax.set(xscale="log", xlabel="ranks (N_d = ranks / N_s)", ylabel="encoder step ms",
                   title=f"N_s = {seq}, L = {int(mine[0]['tokens'])}")
            ax.legend(fontsize=7)
        fig.suptitle(f"SimGrid SMPI, {platform}: simulated (solid) vs spvit plan (dashed)", fontsize=9)
        fig.tight_layout()
        path = os.path.join(out_dir, f"simulated_{platform}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jsonl", nargs="+")
    p.add_argument("--out-dir", required=True)
    a = p.parse_args(argv)
    rows = load(a.jsonl)
    os.makedirs(a.out_dir, exist_ok=True)
    written = []
    written += plot_simulated(rows, a.out_dir)
    for kind in ("strong", "weak", "data"):
        kind_rows = [r for r in rows if r.get("sweep") == kind]
        if not kind_rows:
            continue
        groups = by_strategy(kind_rows)
        title = label(kind, kind_rows)
        out = lambda name: os.path.join(a.out_dir, f"{kind}_{name}.png")  # noqa: E731
        plot_speedup(kind, groups, title, out("speedup"))
        written.append(out("speedup"))
        if plot_split(groups, title, out("split")):
            written.append(out("split"))
        plot_per_rank(groups, lambda r: traffic_bytes(r) / 2**20, "MiB sent + received per rank and step",
                      "communication per rank", title, out("bytes"))
        written.append(out("bytes"))
        plot_per_rank(groups, lambda r: r["peak_gib"] * 1024, f"peak MiB per rank ({kind_rows[0]['peak_of']})",
                      "memory per rank", title, out("memory"))
        written.append(out("memory"))
    if plot_validation(rows, os.path.join(a.out_dir, "model_vs_measured.png")):
        written.append(os.path.join(a.out_dir, "model_vs_measured.png"))
    for path in written:
        print(f"plot: wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
