# `spvit config` as a user runs it (included from tests/CMakeLists.txt): every configuration file in configs/
# validates, and combinations that cannot run are refused before any rank starts work, with exit status 2 and a
# message naming the keys. Also: `spvit bench step` reports the precision that ran, not the one asked for.

# One entry per file, so a new configuration is tested without editing this list.
file(GLOB _spvit_config_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/configs/*.yaml)
foreach(_file IN LISTS _spvit_config_files)
  get_filename_component(_name ${_file} NAME_WE)
  add_test(NAME cli_config_file_${_name}
           COMMAND ${CMAKE_COMMAND} -DSPVIT=${SPVIT_BIN} -DFILE=${_file} -DHAVE_CUDA=${SPVIT_HAVE_CUDA}
                   -P ${CMAKE_CURRENT_LIST_DIR}/../cmake/ConfigFileValid.cmake)
  set_tests_properties(cli_config_file_${_name} PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 60 LABELS config)
endforeach()

# Refusals through the CLI: exit status 2 (a configuration error) and the message naming the keys.
# name | expected message (a regular expression) | spvit config arguments
function(_spvit_config_refused name regex)
  add_test(NAME cli_config_refuses_${name}
           COMMAND ${CMAKE_COMMAND} "-DCOMMAND=${SPVIT_BIN}|config|${ARGN}" "-DREGEX=${regex}" -DEXIT_CODE=2
                   -P ${CMAKE_CURRENT_LIST_DIR}/../cmake/ExpectFailure.cmake)
  set_tests_properties(cli_config_refuses_${name} PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 60
                       LABELS "config;errors")
endfunction()
string(REPLACE ";" "|" _tiny "-c;${PROJECT_SOURCE_DIR}/configs/tiny-cpu.yaml")
# The demo with a learned position table too small for its 16 x 16 grid.
_spvit_config_refused(max_tokens
  "config key 'model\\.max_tokens' = 100 is smaller than the 256 tokens of the uniform grid \\('data\\.size' = 128, 'model\\.patch' = 8\\)"
  "${_tiny}|--set|model.max_tokens=100")
# 3D model on the 2D pathology generator.
_spvit_config_refused(pathology_3d
  "config key 'model\\.spatial_dims' = 3 but 'data\\.kind' = pathology generates 2-D images"
  "--set|model.spatial_dims=3")
# More sequence ranks than token rows.
_spvit_config_refused(seq_rows
  "config key 'grid\\.seq' = 32 needs a token row per sequence rank, but 'data\\.size' = 128 at 'model\\.patch' = 8 has 16 token rows"
  "${_tiny}|--set|grid.seq=32")

# `spvit bench step --tokens` asks for bf16 by default; on the CPU the step runs in fp32, and that is what it must
# report (with where its peak memory comes from).
spvit_add_mpi_test(cli_bench_reports_precision_run NP 1
                   COMMAND ${SPVIT_BIN} bench step --device cpu --tokens 16 --dim 32 --depth 1 --heads 2 --patch 8
                   --decoder-width 4 --steps 1 --warmup 0)
set_tests_properties(cli_bench_reports_precision_run PROPERTIES
                     PASS_REGULAR_EXPRESSION "\"peak_of\":\"host RSS\",\"precision\":\"fp32\"")

# `spvit bench step` on a configuration times the trainer's own step over 2 sequence ranks: the phase table, the
# collectives table with ONE K‖V all-gather and ONE reduce-scatter per block (the demo model has 4 blocks), and the
# JSON line with the split.
spvit_add_mpi_test(cli_bench_step_config NP 2
                   COMMAND ${SPVIT_BIN} bench step -c ${PROJECT_SOURCE_DIR}/configs/tiny-cpu.yaml --steps 1 --warmup 1
                   --loader-batches 1 --set model.depth=4)
set_tests_properties(cli_bench_step_config PROPERTIES
                     PASS_REGULAR_EXPRESSION
                     "\\*\\*step\\*\\*.*\\| all_gather \\| 4 \\|.*\\| reduce_scatter \\| 4 \\|.*\"split_ms\":{[^}]*\"encoder backward\"")

# `spvit bench step --loader-only`: the trainer's loader alone, one row per rank (rate, resident set after opening the
# data, peak), and no model step (no phase table).
spvit_add_mpi_test(cli_bench_loader_only NP 2
                   COMMAND ${SPVIT_BIN} bench step -c ${PROJECT_SOURCE_DIR}/configs/tiny-cpu.yaml --loader-only
                   --loader-batches 2)
set_tests_properties(cli_bench_loader_only PROPERTIES
                     PASS_REGULAR_EXPRESSION "\\| 0 \\| [0-9.]+ \\| [0-9]+ \\| [0-9]+ \\|\n\\| 1 \\| [0-9.]+ \\| [0-9]+ \\| [0-9]+ \\|.*\"loader_only\":true"
                     FAIL_REGULAR_EXPRESSION "\\*\\*step\\*\\*")

# `spvit bench collectives` on 3 ranks (blocks that 3 divides): every operation at every size verified and timed, one
# JSON line each, with nccl-tests' algbw/busbw (tests/dist/check_collectives_jsonl.py).
set(_collectives_jsonl ${CMAKE_CURRENT_BINARY_DIR}/bench_collectives.jsonl)
add_test(NAME cli_bench_collectives_clean COMMAND ${CMAKE_COMMAND} -E rm -f ${_collectives_jsonl})
set_tests_properties(cli_bench_collectives_clean PROPERTIES FIXTURES_SETUP bench_collectives_clean)
spvit_add_mpi_test(cli_bench_collectives NP 3 TIMEOUT 120
                   COMMAND ${SPVIT_BIN} bench collectives -b 1000 -e 64000 -f 4 -n 3 -w 1 --out ${_collectives_jsonl})
set_tests_properties(cli_bench_collectives PROPERTIES FIXTURES_REQUIRED bench_collectives_clean
                     FIXTURES_SETUP bench_collectives_rows
                     PASS_REGULAR_EXPRESSION "all_to_all +63996 .* ok")
add_test(NAME cli_bench_collectives_jsonl COMMAND /usr/bin/python3
         ${PROJECT_SOURCE_DIR}/tests/dist/check_collectives_jsonl.py ${_collectives_jsonl} 3 1000 64000 4)
set_tests_properties(cli_bench_collectives_jsonl PROPERTIES FIXTURES_REQUIRED bench_collectives_rows)
spvit_add_failure_test(cli_bench_collectives_bad_size NP 1 REGEX "size '12Q' must be a positive number of bytes"
                       COMMAND ${SPVIT_BIN} bench collectives -b 12Q)
spvit_add_failure_test(cli_bench_collectives_bad_op NP 1 REGEX "--ops: Check all_sum failed|all_sum"
                       COMMAND ${SPVIT_BIN} bench collectives --ops all_sum)
