# Required: LibTorch, MPI, spdlog, CLI11, yaml-cpp, HDF5. Optional: CUDA (from LibTorch), NCCL, OpenCV, OpenSlide.
find_package(Torch REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Threads REQUIRED)

# Torch's own flags (ABI define, and for CUDA builds its include dirs) come through ${TORCH_LIBRARIES}.
string(REPLACE "." ";" _tv "${Torch_VERSION}")
set(SPVIT_TORCH_VERSION "${Torch_VERSION}")

# ---- CUDA: present when the LibTorch we found was built with it.
set(SPVIT_HAVE_CUDA OFF)
if(TARGET torch_cuda OR TARGET c10_cuda OR CUDA_FOUND)
  set(SPVIT_HAVE_CUDA ON)
endif()

function(spvit_optional_feature name value found)
  if(value STREQUAL "ON" AND NOT ${found})
    message(FATAL_ERROR "SPVIT_WITH_${name}=ON but ${name} was not found")
  endif()
endfunction()

# ---- NCCL (only meaningful with CUDA LibTorch).
set(SPVIT_HAVE_NCCL OFF)
if(NOT SPVIT_WITH_NCCL STREQUAL "OFF" AND SPVIT_HAVE_CUDA)
  find_package(NCCL)
  if(NCCL_FOUND)
    set(SPVIT_HAVE_NCCL ON)
  endif()
endif()
spvit_optional_feature(NCCL "${SPVIT_WITH_NCCL}" SPVIT_HAVE_NCCL)

# ---- OpenCV (only the modules we use: core, imgproc, imgcodecs).
set(SPVIT_HAVE_OPENCV OFF)
if(NOT SPVIT_WITH_OPENCV STREQUAL "OFF")
  find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
  if(OpenCV_FOUND)
    set(SPVIT_HAVE_OPENCV ON)
  endif()
endif()
spvit_optional_feature(OPENCV "${SPVIT_WITH_OPENCV}" SPVIT_HAVE_OPENCV)

# ---- OpenSlide.
set(SPVIT_HAVE_OPENSLIDE OFF)
if(NOT SPVIT_WITH_OPENSLIDE STREQUAL "OFF")
  find_package(OpenSlide)
  if(OpenSlide_FOUND)
    set(SPVIT_HAVE_OPENSLIDE ON)
  endif()
endif()
spvit_optional_feature(OPENSLIDE "${SPVIT_WITH_OPENSLIDE}" SPVIT_HAVE_OPENSLIDE)

# Values for the generated build_info.h (0/1 so they can be used in #if).
foreach(f CUDA NCCL OPENCV OPENSLIDE)
  if(SPVIT_HAVE_${f})
    set(SPVIT_HAVE_${f}_01 1)
  else()
    set(SPVIT_HAVE_${f}_01 0)
  endif()
endforeach()
