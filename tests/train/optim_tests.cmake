# Optimisers, LR schedules, gradient clipping and the fp16 loss scaler (included from tests/CMakeLists.txt).
if(TARGET spvit_optim)
  spvit_add_test_executable(spvit_optim_tests train/test_optimizers.cpp train/test_schedule_clip_scaler.cpp)
  target_link_libraries(spvit_optim_tests PRIVATE spvit_optim)
  add_test(NAME optim COMMAND ${SPVIT_MPIRUN} 1 ${SPVIT_MPIRUN_FLAGS} $<TARGET_FILE:spvit_optim_tests>)
  set_tests_properties(optim PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 300)
  # The scaler's and the clipping's cross-rank agreement with 2 ranks.
  add_test(NAME optim_np2 COMMAND ${SPVIT_MPIRUN} 2 ${SPVIT_MPIRUN_FLAGS} $<TARGET_FILE:spvit_optim_tests>
           --gtest_filter=OptimMpi.*)
  set_tests_properties(optim_np2 PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 300 PROCESSORS 2 LABELS mpi)
endif()
