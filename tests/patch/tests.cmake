# Adaptive patcher tests (included from tests/CMakeLists.txt when the spvit_patch target exists).
spvit_add_test_executable(spvit_patch_tests
  patch/test_scorers.cpp patch/test_tree.cpp patch/test_extract.cpp patch/test_layout_io.cpp)
target_link_libraries(spvit_patch_tests PRIVATE spvit_patch)
if(SPVIT_HAVE_OPENCV)
  # Only to compare the edge map with a direct OpenCV call.
  target_link_libraries(spvit_patch_tests PRIVATE ${OpenCV_LIBS})
endif()
add_test(NAME patch COMMAND ${SPVIT_MPIRUN} 1 ${SPVIT_MPIRUN_FLAGS} $<TARGET_FILE:spvit_patch_tests>)
set_tests_properties(patch PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 600)

# The CLI as a user runs it, and its error paths.
set(_patchify_out ${CMAKE_CURRENT_BINARY_DIR}/patchify_test)
set(_patchify_picture)
if(SPVIT_HAVE_OPENCV)
  set(_patchify_picture --out ${_patchify_out}.png)
endif()
spvit_add_mpi_test(cli_patchify NP 1 COMMAND $<TARGET_FILE:spvit> patchify --synthetic 1024 --length 1000 --patch 16
                   --scorer gradient ${_patchify_picture} --json ${_patchify_out}.json --h5 ${_patchify_out}.h5)
set_tests_properties(cli_patchify PROPERTIES PASS_REGULAR_EXPRESSION "tokens: +1000 = 1000 leaves")
spvit_add_failure_test(cli_patchify_missing_file NP 1 REGEX "cannot open image '/nonexistent/slide.png'"
                       COMMAND $<TARGET_FILE:spvit> patchify /nonexistent/slide.png --length 64)
spvit_add_failure_test(cli_patchify_bad_patch NP 1 REGEX "patch side P = 12 must be a power of two"
                       COMMAND $<TARGET_FILE:spvit> patchify --synthetic 256 --patch 12 --scorer variance)
spvit_add_failure_test(cli_patchify_bad_length NP 1 REGEX "sequence length L must be >= 1, got 0"
                       COMMAND $<TARGET_FILE:spvit> patchify --synthetic 256 --length 0 --scorer variance)
