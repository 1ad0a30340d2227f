# The adaptive patcher benchmark (included from benchmarks/CMakeLists.txt).
if(TARGET spvit_patch)
  add_executable(bench_patcher ${CMAKE_CURRENT_LIST_DIR}/bench_patcher.cpp)
  target_link_libraries(bench_patcher PRIVATE spvit_patch)
  spvit_target_defaults(bench_patcher)
  set_target_properties(bench_patcher PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endif()
