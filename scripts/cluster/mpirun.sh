#!/usr/bin/env bash
# spvit training with a plain Open MPI mpirun over the hosts of a hostfile (no batch system, or inside an
# allocation whose launcher is mpirun). docs/cluster.md explains the choices.
#
#   scripts/cluster/mpirun.sh --config FILE.yaml --nodes N [--ranks-per-node R] [--grid DxS] [--hostfile FILE]
#                             [--cores-per-rank C] [--dry-run] [-- spvit train arguments...]
#   e.g. scripts/cluster/mpirun.sh --hostfile hosts --nodes 2 --ranks-per-node 4 --grid 2x4 \
#            --config configs/big.yaml -- --set train.steps=2000
#
#   --nodes N           nodes to use (the first N hosts of the hostfile; default 1)
#   --ranks-per-node R  ranks per node, normally one per GPU (default: the GPUs nvidia-smi lists here, else 1)
#   --grid DxS          data groups x sequence ranks; D = 0 means "all ranks / S" (default 0xR: one sequence group
#                       per node)
#   --hostfile FILE     Open MPI hostfile ("host slots=R" lines); without it every rank runs on this host
#   --cores-per-rank C  bind each rank to C cores (and use C CPU threads); default: no binding, spvit divides the
#                       node's cores between its ranks
#   after --             passed to `spvit train` (--set key=value ..., --resume); without --resume the run continues
#                        from <train.out_dir>/checkpoint.pt when there is one (--resume-if-exists)
# Environment: SPVIT (the binary, default build/bin/spvit), MPIRUN (default mpirun); variables named NCCL_*,
# CUDA_* and SPVIT_* are forwarded to every rank.
#
# Rank -> GPU: spvit selects GPU <node-local rank>, the rank within the node's MPI shared-memory communicator
# (dist::node_local_rank()), so ranks need no per-rank device variable; --map-by ppr:R:node gives node k the
# consecutive ranks kR..kR+R-1, which keeps each sequence group of <= R ranks on one node.
set -euo pipefail

usage() { sed -n '5,7p' "$0" >&2; exit 2; }
CONFIG='' NODES=1 RANKS_PER_NODE='' GRID='' HOSTFILE='' CORES_PER_RANK='' DRY_RUN=0
while [ $# -gt 0 ]; do
  case $1 in
    --config) CONFIG=${2:?}; shift 2 ;;
    --nodes) NODES=${2:?}; shift 2 ;;
    --ranks-per-node) RANKS_PER_NODE=${2:?}; shift 2 ;;
    --grid) GRID=${2:?}; shift 2 ;;
    --hostfile) HOSTFILE=${2:?}; shift 2 ;;
    --cores-per-rank) CORES_PER_RANK=${2:?}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; break ;;
    *) echo "unknown option '$1'" >&2; usage ;;
  esac
done
SPVIT=${SPVIT:-build/bin/spvit}
MPIRUN=${MPIRUN:-mpirun}
if [ -z "$RANKS_PER_NODE" ]; then
  RANKS_PER_NODE=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  (( RANKS_PER_NODE > 0 )) || RANKS_PER_NODE=1
fi
GRID=${GRID:-0x$RANKS_PER_NODE}

[ -n "$CONFIG" ] || { echo "--config is required" >&2; usage; }
[[ $NODES =~ ^[1-9][0-9]*$ && $RANKS_PER_NODE =~ ^[1-9][0-9]*$ ]] || { echo "--nodes and --ranks-per-node must be positive" >&2; exit 2; }
[[ $GRID =~ ^([0-9]+)x([0-9]+)$ ]] || { echo "--grid '$GRID' must be DxS, e.g. 2x4" >&2; exit 2; }
DATA=${BASH_REMATCH[1]} SEQ=${BASH_REMATCH[2]}
RANKS=$((NODES * RANKS_PER_NODE))
(( SEQ >= 1 && RANKS % SEQ == 0 )) || { echo "grid.seq = $SEQ does not divide $RANKS ranks" >&2; exit 2; }
(( DATA > 0 )) || DATA=$((RANKS / SEQ))
(( DATA * SEQ == RANKS )) || { echo "grid ${DATA}x${SEQ} needs $((DATA * SEQ)) ranks; --nodes x --ranks-per-node is $RANKS" >&2; exit 2; }
if (( RANKS_PER_NODE % SEQ != 0 && SEQ % RANKS_PER_NODE != 0 )); then
  echo "warning: sequence groups of $SEQ ranks straddle nodes of $RANKS_PER_NODE ranks; the per-layer K||V" \
       "all-gather then crosses the network (prefer grid.seq dividing $RANKS_PER_NODE)" >&2
fi
if [ -z "$HOSTFILE" ] && (( NODES > 1 )); then echo "--nodes $NODES needs --hostfile" >&2; exit 2; fi

# On SIGTERM/SIGINT Open MPI's mpirun forwards the signal to the ranks and SIGKILLs them odls_base_sigkill_timeout
# seconds later (default 1: too short to finish a step and write a checkpoint). SPVIT_STOP_GRACE_S gives spvit that
# time (default 300 s). SIGUSR1 is forwarded as is.
LAUNCH=("$MPIRUN" -np "$RANKS" --mca odls_base_sigkill_timeout "${SPVIT_STOP_GRACE_S:-300}")
[ -z "$HOSTFILE" ] || LAUNCH+=(--hostfile "$HOSTFILE")
if [ -n "$CORES_PER_RANK" ]; then
  LAUNCH+=(--map-by "ppr:$RANKS_PER_NODE:node:PE=$CORES_PER_RANK" --bind-to core -x "OMP_NUM_THREADS=$CORES_PER_RANK")
else
  LAUNCH+=(--map-by "ppr:$RANKS_PER_NODE:node" --bind-to none)
fi
while read -r name; do LAUNCH+=(-x "$name"); done < <(compgen -e | grep -E '^(NCCL_|CUDA_|SPVIT_)' || true)

ARGS=(-c "$CONFIG" --set "grid.data=$DATA" --set "grid.seq=$SEQ")
CHECK=("${ARGS[@]}")  # what `spvit config` accepts: the file and the --set overrides
prev=
for a in "$@"; do [ "$prev" = --set ] && CHECK+=(--set "$a"); prev=$a; done
ARGS+=("$@")
[[ " $* " == *" --resume"* ]] || ARGS+=(--resume-if-exists)  # a rerun of the same command continues
run() { if [ "$DRY_RUN" = 1 ]; then echo "$*"; else "$@"; fi; }

echo "spvit: $NODES node(s) x $RANKS_PER_NODE ranks, grid ${DATA}x${SEQ} (data x seq), config $CONFIG"
# Check the configuration first (a bad key fails before any rank starts); prints the resolved configuration.
run "$MPIRUN" -np 1 "$SPVIT" config "${CHECK[@]}"
# Exit code 75: stopped by SIGTERM/SIGINT/SIGUSR1 with a checkpoint written; run this command again to continue.
run "${LAUNCH[@]}" "$SPVIT" train "${ARGS[@]}"
