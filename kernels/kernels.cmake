# The kernels layer (docs/architecture.md): CUDA kernels with stream-taking launchers (*.cu: CUDA headers
# only, no LibTorch) and their torch-facing API (*.cpp), whose LibTorch-op versions are the CPU path and the
# reference. Included from src/CMakeLists.txt before spvit_dist, which links spvit_kernels.
set(SPVIT_KERNEL_CUDA_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/kv_pack.cu
  ${CMAKE_CURRENT_LIST_DIR}/multi_tensor.cu
  ${CMAKE_CURRENT_LIST_DIR}/patch_resample.cu)
set(SPVIT_CUDA_ARCHITECTURES 90a CACHE STRING
    "CUDA architectures of the kernels when LibTorch's CUDA flags name none (90a = H100)")

spvit_add_library(spvit_kernels
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kv_pack.cpp ${CMAKE_CURRENT_LIST_DIR}/multi_tensor.cpp
          ${CMAKE_CURRENT_LIST_DIR}/patch_resample.cpp
  DEPS spvit_core)

# nvcc compiles the .cu files without the shared C++ precompiled header, for the architectures LibTorch's CMake put
# in CMAKE_CUDA_FLAGS (from TORCH_CUDA_ARCH_LIST) or, when it put none, SPVIT_CUDA_ARCHITECTURES.
function(spvit_cuda_sources tgt)
  set_source_files_properties(${SPVIT_KERNEL_CUDA_SOURCES} TARGET_DIRECTORY ${tgt}
                              PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
  set_target_properties(${tgt} PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
  if(CMAKE_CUDA_FLAGS MATCHES "(-gencode|--generate-code|-arch)")
    set_target_properties(${tgt} PROPERTIES CUDA_ARCHITECTURES OFF)
  else()
    set_target_properties(${tgt} PROPERTIES CUDA_ARCHITECTURES "${SPVIT_CUDA_ARCHITECTURES}")
  endif()
endfunction()

if(SPVIT_HAVE_CUDA)
  enable_language(CUDA)  # CUDA LibTorch's CMake has usually enabled it already
  if(NOT TARGET CUDA::cudart)
    find_package(CUDAToolkit REQUIRED)
  endif()
  target_sources(spvit_kernels PRIVATE ${SPVIT_KERNEL_CUDA_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/torch_cuda.cpp)
  target_link_libraries(spvit_kernels PUBLIC CUDA::cudart)
  spvit_cuda_sources(spvit_kernels)
  # The shared CUDA runtime, as LibTorch uses: one runtime per process.
  set_target_properties(spvit_kernels PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
  message(STATUS "CUDA kernels: built into spvit_kernels")
else()
  # CPU LibTorch: the kernels cannot run, but when nvcc is installed CI still compiles them (one architecture, not
  # linked into anything), so a kernel that does not build is caught before the GPU machine. Cost on the 2-core CI VM:
  # ~50 s once at the first configure (nvcc detection), ~60 s wall / ~16 s CPU to compile the three files.
  option(SPVIT_CHECK_CUDA_KERNELS "Compile-check the CUDA kernels with nvcc when LibTorch has no CUDA" ON)
  if(SPVIT_CHECK_CUDA_KERNELS)
    include(CheckLanguage)
    check_language(CUDA)
  endif()
  if(SPVIT_CHECK_CUDA_KERNELS AND CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    add_library(spvit_kernels_nvcc_check OBJECT ${SPVIT_KERNEL_CUDA_SOURCES})
    spvit_cuda_sources(spvit_kernels_nvcc_check)
    message(STATUS "CUDA kernels: compile-checked by ${CMAKE_CUDA_COMPILER} (sm_${SPVIT_CUDA_ARCHITECTURES}), "
                   "not run (LibTorch has no CUDA)")
  else()
    message(STATUS "CUDA kernels: not compiled (no CUDA LibTorch; nvcc not found or SPVIT_CHECK_CUDA_KERNELS=OFF); "
                   "the LibTorch-op versions are used")
  endif()
endif()
