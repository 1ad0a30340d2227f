# CUDA kernel bandwidth versus device-to-device copies (included from benchmarks/CMakeLists.txt). Built in every
# configuration; without CUDA it says so and measures nothing.
add_executable(bench_kernels ${CMAKE_CURRENT_LIST_DIR}/bench_kernels.cpp)
target_link_libraries(bench_kernels PRIVATE spvit_dist)
spvit_target_defaults(bench_kernels)
set_target_properties(bench_kernels PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
