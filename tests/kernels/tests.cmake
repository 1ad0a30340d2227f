# Kernel-layer tests (included from tests/CMakeLists.txt): the LibTorch-op versions against float64 references and,
# for the leaf extract/paste, against the patch layer; the CUDA kernels against the CPU versions (skipped unless the
# build has CUDA and the machine a GPU).
set(_kernel_tests kernels/test_kv_pack.cpp kernels/test_multi_tensor.cpp)
if(TARGET spvit_patch)
  list(APPEND _kernel_tests kernels/test_patch_resample.cpp)  # compares with the patch layer's extract/paste
endif()
spvit_add_test_executable(spvit_kernel_tests ${_kernel_tests})
if(TARGET spvit_patch)
  target_link_libraries(spvit_kernel_tests PRIVATE spvit_patch)
endif()
add_test(NAME kernels COMMAND ${SPVIT_MPIRUN} 1 ${SPVIT_MPIRUN_FLAGS} $<TARGET_FILE:spvit_kernel_tests>)
set_tests_properties(kernels PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 300)
