# The demo converges: configs/tiny-cpu.yaml trained on 2 sequence-parallel ranks reaches mean foreground Dice >= 0.85
# on held-out synthetic images (included from tests/CMakeLists.txt). Four ctest entries chained by fixtures, so
# `ctest -R demo_convergence` (or -L slow) runs them in order and a failed step skips the ones after it:
#   clean -> train (spvit train, as scripts/demo.sh runs it) -> eval (spvit eval) -> dice (check_dice.cmake).
# The held-out images are the configuration's validation set: train::open_datasets generates it from seed + 7919
# while training samples come from `seed`, and every synthetic sample is a hash of (seed, index), so no validation
# image is a training image.
if(TARGET spvit_data AND TARGET spvit_optim)
  set(_demo_dir ${CMAKE_CURRENT_BINARY_DIR}/demo_convergence)
  set(_demo_config ${PROJECT_SOURCE_DIR}/configs/tiny-cpu.yaml)
  set(_demo_min_dice 0.85)

  # A fresh directory: a stale checkpoint or metrics.json from an earlier run must never be what gets checked.
  add_test(NAME demo_convergence_clean COMMAND ${CMAKE_COMMAND} -E rm -rf ${_demo_dir})
  set_tests_properties(demo_convergence_clean PROPERTIES FIXTURES_SETUP demo_convergence_clean LABELS slow)

  # Training takes about 3-4 minutes on 2 free cores (docs/training.md, "Convergence of the demo"); the timeout
  # leaves room for a loaded CI machine.
  spvit_add_mpi_test(demo_convergence_train NP 2 TIMEOUT 1200
                     COMMAND ${SPVIT_BIN} train --config ${_demo_config} --set train.out_dir=${_demo_dir})
  set_tests_properties(demo_convergence_train PROPERTIES FIXTURES_REQUIRED demo_convergence_clean
                       FIXTURES_SETUP demo_convergence_trained LABELS "mpi;slow")

  spvit_add_mpi_test(demo_convergence_eval NP 2 TIMEOUT 300
                     COMMAND ${SPVIT_BIN} eval --checkpoint ${_demo_dir}/checkpoint.pt --out ${_demo_dir}/eval)
  set_tests_properties(demo_convergence_eval PROPERTIES FIXTURES_REQUIRED demo_convergence_trained
                       FIXTURES_SETUP demo_convergence_evaluated LABELS "mpi;slow")

  add_test(NAME demo_convergence_dice
           COMMAND ${CMAKE_COMMAND} -DMETRICS=${_demo_dir}/eval/metrics.json -DMIN_DICE=${_demo_min_dice}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/train/check_dice.cmake)
  set_tests_properties(demo_convergence_dice PROPERTIES FIXTURES_REQUIRED demo_convergence_evaluated
                       TIMEOUT 60 LABELS slow)
endif()
