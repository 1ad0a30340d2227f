# GPU path tests. The gtest binary builds everywhere and skips without CUDA/NCCL; the CLI runs on the device and the
# watchdog probe are registered only in CUDA builds.
spvit_add_test_executable(spvit_gpu_tests dist/test_nccl_gpu.cpp model/test_attention_gpu.cpp train/test_optim_gpu.cpp
                          train/test_trainer_gpu.cpp)
spvit_add_mpi_test(gpu_nccl NP 1 COMMAND $<TARGET_FILE:spvit_gpu_tests>)
if(SPVIT_HAVE_CUDA)
  # The encoder on the GPU vs the float64/float32 CPU reference: one rank over NCCL, two ranks sharing the GPU over
  # MPI (host-staged), two data groups with two-stage averaging.
  spvit_add_mpi_test(gpu_selftest_nccl_1x1 NP 1 COMMAND ${SPVIT_BIN} selftest sp --device cuda --grid 1x1
                     --length 1001 --layers 3 --dtype float64)
  spvit_add_mpi_test(gpu_selftest_mpi_1x2_f32 NP 2 COMMAND ${SPVIT_BIN} selftest sp --device cuda --backend mpi
                     --grid 1x2 --length 1001 --layers 3 --dtype float32)
  spvit_add_mpi_test(gpu_selftest_mpi_2x2_f64 NP 4 COMMAND ${SPVIT_BIN} selftest sp --device cuda --backend mpi
                     --grid 2x2 --length 999 --layers 2 --dtype float64 --grad-average two-stage --checkpointing)
  # Every other strategy on the GPU (two ranks sharing it over MPI; 3 heads: uneven Ulysses groups).
  foreach(strategy ulysses ring hybrid)
    spvit_add_mpi_test(gpu_selftest_${strategy}_1x2 NP 2 COMMAND ${SPVIT_BIN} selftest sp --device cuda --backend mpi
                       --grid 1x2 --length 1001 --layers 2 --heads 3 --dim 48 --dtype float64 --strategy ${strategy}
                       --ulysses-size 1 --hybrid-outer ring)
    set_tests_properties(gpu_selftest_${strategy}_1x2 PROPERTIES LABELS "mpi;gpu")
  endforeach()
  # The ring's fused blocks (float32 on CUDA) with empty slots: masked keys dropped per block, whole blocks empty.
  spvit_add_mpi_test(gpu_selftest_ring_fused_1x2_f32 NP 2 COMMAND ${SPVIT_BIN} selftest sp --device cuda --backend mpi
                     --grid 1x2 --length 1001 --layers 2 --dtype float32 --strategy ring --pos coords
                     --empty-tokens 600)
  set_tests_properties(gpu_selftest_ring_fused_1x2_f32 PROPERTIES LABELS "mpi;gpu")
  set_tests_properties(gpu_selftest_nccl_1x1 gpu_selftest_mpi_1x2_f32 gpu_selftest_mpi_2x2_f64 PROPERTIES
                       LABELS "mpi;gpu")
endif()
if(SPVIT_HAVE_NCCL)
  # The CUDA/NCCL error macros (they need the CUDA runtime and the private NCCL header of src/dist).
  target_sources(spvit_gpu_tests PRIVATE dist/test_cuda_check_gpu.cpp)
  target_include_directories(spvit_gpu_tests PRIVATE ${PROJECT_SOURCE_DIR}/src/dist)
  add_executable(spvit_nccl_probe dist/nccl_probe.cpp)
  target_link_libraries(spvit_nccl_probe PRIVATE spvit_dist)
  spvit_target_defaults(spvit_nccl_probe)
  spvit_add_failure_test(gpu_nccl_watchdog NP 1 REGEX "(recv #1 on communicator 'world'|ncclRecv)"
                         COMMAND $<TARGET_FILE:spvit_nccl_probe>)
endif()
