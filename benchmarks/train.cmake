# Training benchmarks (included from benchmarks/CMakeLists.txt): where a step's time goes, and whether the loader
# keeps up with the step (bench_train_step; see docs/benchmarks.md).
if(TARGET spvit_train AND TARGET spvit_data AND TARGET spvit_optim)
  add_executable(bench_train_step bench_train_step.cpp)
  target_link_libraries(bench_train_step PRIVATE spvit_train)
  spvit_target_defaults(bench_train_step)
  set_target_properties(bench_train_step PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endif()
