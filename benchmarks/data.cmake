# Data layer benchmarks (included from benchmarks/CMakeLists.txt).
if(TARGET spvit_data)
  add_executable(bench_loader bench_loader.cpp)
  target_link_libraries(bench_loader PRIVATE spvit_data)
  spvit_target_defaults(bench_loader)
  set_target_properties(bench_loader PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endif()
# Slide read throughput per rank against a step's needs (whole-slide training; needs the slide reader).
if(TARGET spvit_infer)
  add_executable(bench_slide_read bench_slide_read.cpp)
  target_link_libraries(bench_slide_read PRIVATE spvit_infer spvit_train)
  spvit_target_defaults(bench_slide_read)
  set_target_properties(bench_slide_read PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endif()
