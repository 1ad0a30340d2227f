# Scaling studies (scripts/scaling/, docs/scaling.md): the sweep driver runs the real `spvit bench step` under
# mpirun and its rows say what ran; the plot script turns rows into PNGs (Debian's python3-matplotlib: these tests
# fail, not skip, without it).
set(_scaling_dir ${CMAKE_CURRENT_BINARY_DIR}/scaling)
set(_sweep ${_scaling_dir}/sweep.jsonl)
set(_python /usr/bin/python3)
add_test(NAME scaling_clean COMMAND ${CMAKE_COMMAND} -E rm -rf ${_scaling_dir})
set_tests_properties(scaling_clean PROPERTIES FIXTURES_SETUP scaling_clean)

# A 2-rank strong-scaling sweep over two strategies with a tiny model (about 15 s on 2 cores).
add_test(NAME scaling_sweep_np2 COMMAND ${_python} ${PROJECT_SOURCE_DIR}/scripts/scaling/sweep.py --kind strong
         --tokens 256 --ranks 1,2 --strategies lss-kv,ulysses --out ${_sweep} --spvit ${SPVIT_BIN} --
         --dim 32 --depth 1 --heads 2 --patch 8 --decoder-width 4 --steps 2 --warmup 1)
set_tests_properties(scaling_sweep_np2 PROPERTIES FIXTURES_REQUIRED scaling_clean FIXTURES_SETUP scaling_rows
                     ENVIRONMENT "${SPVIT_TEST_ENV}" PROCESSORS 2 TIMEOUT 120 LABELS mpi
                     PASS_REGULAR_EXPRESSION "ulysses +ranks=2 grid=1x2 tokens=256")
# Its rows: 4 (2 strategies x 1, 2 ranks), each with the sweep's provenance and the traffic of the strategy's own
# collectives on 2 ranks (lss-kv all_gather, ulysses all_to_all).
add_test(NAME scaling_sweep_rows COMMAND ${_python} -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, len(rows)
for r in rows:
    for k in ('machine', 'date', 'commit', 'command', 'strategy', 'sweep', 'step_ms', 'split_ms'): assert r[k], k
    assert r['grid'] == '1x%d' % r['ranks'] and r['attention'] == r['strategy'], r
    if r['ranks'] == 2:
        op = {'lss-kv': 'all_gather', 'ulysses': 'all_to_all'}[r['strategy']]
        assert r['comm_per_step'][op]['received_bytes'] > 0, (op, r['comm_per_step'])
print('rows OK')
" ${_sweep})
set_tests_properties(scaling_sweep_rows PROPERTIES FIXTURES_REQUIRED scaling_rows PASS_REGULAR_EXPRESSION "rows OK")

# The figures: from the live sweep, and from the committed np 1-4 sweeps of docs/scaling.md (every kind).
set(_check_pngs "
import sys, matplotlib
matplotlib.use('Agg')
import matplotlib.image as im, os
d, names = sys.argv[1], sys.argv[2:]
for n in names:
    a = im.imread(os.path.join(d, n + '.png'))
    assert a.shape[0] > 100 and a.shape[1] > 100, (n, a.shape)
print('%d figures OK' % len(names))
")
add_test(NAME scaling_plot_live COMMAND ${_python} ${PROJECT_SOURCE_DIR}/scripts/scaling/plot.py
         ${_sweep} --out-dir ${_scaling_dir}/live)
set_tests_properties(scaling_plot_live PROPERTIES FIXTURES_REQUIRED scaling_rows FIXTURES_SETUP scaling_live_pngs)
add_test(NAME scaling_plot_live_check COMMAND ${_python} -c "${_check_pngs}" ${_scaling_dir}/live
         strong_speedup strong_split strong_bytes strong_memory)
set_tests_properties(scaling_plot_live_check PROPERTIES FIXTURES_REQUIRED scaling_live_pngs)
add_test(NAME scaling_plot_committed COMMAND ${_python} ${PROJECT_SOURCE_DIR}/scripts/scaling/plot.py
         ${PROJECT_SOURCE_DIR}/docs/scaling/sweeps-2core.jsonl --out-dir ${_scaling_dir}/committed)
set_tests_properties(scaling_plot_committed PROPERTIES FIXTURES_REQUIRED scaling_clean
                     FIXTURES_SETUP scaling_committed_pngs)
add_test(NAME scaling_plot_committed_check COMMAND ${_python} -c "${_check_pngs}" ${_scaling_dir}/committed
         strong_speedup strong_split strong_bytes strong_memory weak_speedup weak_split weak_bytes weak_memory
         data_speedup data_split data_bytes data_memory)
set_tests_properties(scaling_plot_committed_check PROPERTIES FIXTURES_REQUIRED scaling_committed_pngs)

# Bad input: a missing spvit and a file without sweep rows are named and exit non-zero.
spvit_add_refusal_test(scaling_sweep_missing_spvit "no-such-spvit is not an executable spvit"
                 ${_python} ${PROJECT_SOURCE_DIR}/scripts/scaling/sweep.py --kind strong --out
                 ${_scaling_dir}/never.jsonl --spvit ${_scaling_dir}/no-such-spvit)
spvit_add_refusal_test(scaling_plot_not_jsonl "default.yaml:[0-9]+ is not JSON"
                 ${_python} ${PROJECT_SOURCE_DIR}/scripts/scaling/plot.py ${PROJECT_SOURCE_DIR}/configs/default.yaml
                 --out-dir ${_scaling_dir}/none)

# A real Slurm (tests/scaling/slurm_cluster.sh: one node from Debian's slurmctld, slurmd and munge, private config,
# state and logs under the build tree, stopped on exit). Fails when the daemons cannot start. One at a time: both use
# the same ports. Measured: sweep 22 s; preempt 3 min 17 s with Slurm's default 120 s requeue delay, which the test
# cluster lowers to 10 s (AuthInfo cred_expire).
foreach(_mode sweep preempt)
  add_test(NAME slurm_${_mode} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scaling/slurm_test.sh ${_mode} ${SPVIT_BIN}
           ${_scaling_dir}/slurm_${_mode})
  set_tests_properties(slurm_${_mode} PROPERTIES TIMEOUT 400 PROCESSORS 2 RESOURCE_LOCK slurm LABELS "mpi;faults"
                       PASS_REGULAR_EXPRESSION "PASSED:")
endforeach()

# `spvit bench step --trace` (the simulation's input, docs/scaling.md "Simulation"): rank 0's collectives of one step
# with their phases — for lss-kv on 2 ranks, depth 1: one K‖V all_gather in the encoder's forward and one
# reduce_scatter in its backward (the strategy's own calls), the decoder's halo exchanges (send_recv) in the decoder's
# phases only, the gradient all-reduce on the averager's communicator.
add_test(NAME scaling_trace_mkdir COMMAND ${CMAKE_COMMAND} -E make_directory ${_scaling_dir})
set_tests_properties(scaling_trace_mkdir PROPERTIES FIXTURES_REQUIRED scaling_clean FIXTURES_SETUP scaling_trace_dir)
spvit_add_mpi_test(scaling_trace_np2 NP 2 TIMEOUT 120 COMMAND ${SPVIT_BIN} bench step --tokens 256 --dim 32 --depth 1
                   --heads 2 --patch 8 --decoder-width 4 --steps 1 --warmup 1 --set model.attention=lss-kv
                   --trace ${_scaling_dir}/trace.jsonl)
set_tests_properties(scaling_trace_np2 PROPERTIES FIXTURES_REQUIRED scaling_trace_dir FIXTURES_SETUP scaling_trace)
add_test(NAME scaling_trace_check COMMAND ${_python} -c "
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
head, events = lines[0], lines[1:]
assert head['trace_events'] == len(events) and head['grid'] == '1x2', head
def calls(op, comm, phase):
    return [e for e in events if e['op'] == op and e['comm'] == comm and e['phase'].startswith(phase)]
ag = calls('all_gather', 'seq', 'encoder forward')
rs = calls('reduce_scatter', 'seq', 'encoder backward')
assert len(ag) == 1 and len(rs) == 1, (ag, rs)
assert calls('send_recv', 'seq', 'decoder forward') and not calls('send_recv', 'seq', 'encoder'), events
assert ag[0]['bytes'] == 2 * 256 * 32 * 4 and ag[0]['ranks'] == 2, ag  # K||V of all 256 tokens, fp32
assert any(e['op'] == 'all_reduce' and e['comm'] == 'world.grads' for e in events), events
print('trace OK: %d calls' % len(events))
" ${_scaling_dir}/trace.jsonl)
set_tests_properties(scaling_trace_check PROPERTIES FIXTURES_REQUIRED scaling_trace PASS_REGULAR_EXPRESSION "trace OK")

# The SimGrid SMPI replay (scripts/simulation/simulate.py --quick: traces of the 4 strategies on 2-4 local ranks,
# replayed on the Frontier-like dragonfly and the Summit-like fat tree near 64 and 256 ranks with N_s 8 and 16).
# Fails, not skips, without Debian's libsimgrid-dev. Then: every row's fit check passed (the replay fails otherwise),
# a layer replayed on one block of whole switches took the time the whole machine took, on both platforms (what
# lets the full sweep reach 4,096 ranks), and the simulated step is near the analytic model's (both are alpha-beta over the same volumes; the simulation adds contention and SMPI's algorithms).
add_test(NAME simulation_quick COMMAND ${_python} ${PROJECT_SOURCE_DIR}/scripts/simulation/simulate.py --quick
         --spvit ${SPVIT_BIN} --out ${_scaling_dir}/simulated.jsonl --work ${_scaling_dir}/simulation)
set_tests_properties(simulation_quick PROPERTIES FIXTURES_REQUIRED scaling_trace_dir FIXTURES_SETUP simulation_rows
                     ENVIRONMENT "${SPVIT_TEST_ENV}" PROCESSORS 2 TIMEOUT 900 LABELS "mpi;slow")
add_test(NAME simulation_check COMMAND ${_python} -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) >= 12, len(rows)
for r in rows:
    a = r['analytic']
    assert a, r
    ratio = r['step_ms'] / a['encoder_ms']
    assert 0.5 < ratio < 2.0, (r['strategy'], r['ranks'], r['seq'], r['step_ms'], a)
    if r['layer_ranks'] < r['ranks']:
        assert abs(r['whole_machine_layer_ms'] - r['layer_ms']) <= 1e-3 * r['layer_ms'], r
blocks = {r['platform'] for r in rows if r['layer_ranks'] < r['ranks']}
assert blocks == {'frontier-dragonfly', 'summit-fattree'}, blocks
print('simulation OK: %d rows, blocks checked against whole machines on %s' % (len(rows), sorted(blocks)))
" ${_scaling_dir}/simulated.jsonl)
set_tests_properties(simulation_check PROPERTIES FIXTURES_REQUIRED simulation_rows PASS_REGULAR_EXPRESSION "simulation OK")
