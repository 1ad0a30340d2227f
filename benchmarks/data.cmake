# Data layer benchmarks (included from benchmarks/CMakeLists.txt).
if(TARGET spvit_data)
  add_executable(bench_loader bench_loader.cpp)
  target_link_libraries(bench_loader PRIVATE spvit_data)
  spvit_target_defaults(bench_loader)
  set_target_properties(bench_loader PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endif()
