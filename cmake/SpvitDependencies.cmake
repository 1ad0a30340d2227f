# Required: LibTorch, MPI, spdlog, CLI11, yaml-cpp, nlohmann-json, HDF5, pugixml, GEOS,
# libnifti2. Optional (SPVIT_WITH_<X>): CUDA
# (from LibTorch), NCCL, OpenCV, OpenSlide, libtiff.
find_package(Torch REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(pugixml REQUIRED)  # ASAP XML annotations
find_package(GEOS 3.10 REQUIRED)  # repairing invalid annotation polygons (MakeValid "structure" method)
find_package(Threads REQUIRED)
# NIfTI volumes (data.source: nifti, 3D inference). Debian's NIFTIConfig.cmake names a libznz path the package does
# not install, so the header and libraries are found directly. libnifti2 (not libniftiio: the NIfTI-1-only library
# exports the same symbols with other struct layouts).
find_path(NIFTI_INCLUDE_DIR nifti2_io.h PATH_SUFFIXES nifti REQUIRED)
find_library(NIFTI2_LIBRARY nifti2 REQUIRED)
find_library(ZNZ_LIBRARY znz REQUIRED)

# PyTorch 2.x wheels ship their own, newer {fmt} in torch/include. Those headers would shadow the system {fmt} that
# the system spdlog was compiled against (spdlog then fails to compile: "basic_format_string is not a member of
# fmt"). A one-entry shim directory, searched before Torch's, makes `#include <fmt/...>` resolve to the system {fmt}.
set(SPVIT_FMT_SHIM_DIR "")
find_path(SPVIT_SYSTEM_FMT_INCLUDE fmt/format.h PATHS /usr/include /usr/local/include NO_DEFAULT_PATH)
set(_torch_ships_fmt OFF)
foreach(_dir ${TORCH_INCLUDE_DIRS})
  if(EXISTS "${_dir}/fmt/format.h" AND NOT _dir STREQUAL SPVIT_SYSTEM_FMT_INCLUDE)
    set(_torch_ships_fmt ON)
  endif()
endforeach()
if(_torch_ships_fmt)
  if(SPVIT_SYSTEM_FMT_INCLUDE)
    set(SPVIT_FMT_SHIM_DIR ${CMAKE_BINARY_DIR}/generated/fmt-shim)
    file(MAKE_DIRECTORY ${SPVIT_FMT_SHIM_DIR})
    file(CREATE_LINK ${SPVIT_SYSTEM_FMT_INCLUDE}/fmt ${SPVIT_FMT_SHIM_DIR}/fmt SYMBOLIC)
    message(STATUS "LibTorch ships its own {fmt}: using the system {fmt} in ${SPVIT_SYSTEM_FMT_INCLUDE} for spdlog")
  endif()
endif()

# Torch's own flags (ABI define, and for CUDA builds its include dirs) come through ${TORCH_LIBRARIES}.
string(REPLACE "." ";" _tv "${Torch_VERSION}")
set(SPVIT_TORCH_VERSION "${Torch_VERSION}")

# ---- CUDA: present when the LibTorch we found was built with it.
set(SPVIT_HAVE_CUDA OFF)
if(TARGET torch_cuda OR TARGET c10_cuda OR CUDA_FOUND)
  set(SPVIT_HAVE_CUDA ON)
endif()

# spvit_feature(NAME FOUND_VAR HOW_TO_INSTALL): the one rule for optional features. SPVIT_WITH_<NAME> is ON
# (required: configure fails when it is missing, naming what to install), AUTO (used when found) or OFF. The README's
# build (scripts/build.sh) passes ON for every CPU feature, so a fresh machine that lacks a package fails loudly
# instead of building a smaller spvit whose tests then pass.
function(spvit_feature name found how_to_install)
  if(SPVIT_WITH_${name} STREQUAL "ON" AND NOT ${found})
    message(FATAL_ERROR "SPVIT_WITH_${name}=ON but ${name} was not found: ${how_to_install}\n"
                        "(or configure with -DSPVIT_WITH_${name}=AUTO or OFF to build without it)")
  endif()
endfunction()
foreach(_feature NCCL OPENCV OPENSLIDE TIFF)
  if(NOT SPVIT_WITH_${_feature} MATCHES "^(ON|AUTO|OFF)$")
    message(FATAL_ERROR "SPVIT_WITH_${_feature} must be ON, AUTO or OFF, got '${SPVIT_WITH_${_feature}}'")
  endif()
endforeach()

# ---- NCCL (only meaningful with CUDA LibTorch).
set(SPVIT_HAVE_NCCL OFF)
if(NOT SPVIT_WITH_NCCL STREQUAL "OFF" AND SPVIT_HAVE_CUDA)
  find_package(NCCL)
  if(NCCL_FOUND)
    set(SPVIT_HAVE_NCCL ON)
  endif()
endif()
spvit_feature(NCCL SPVIT_HAVE_NCCL "it needs a CUDA LibTorch and NCCL (the nvidia-nccl wheel beside PyTorch, or -DNCCL_ROOT=...)")

# ---- OpenCV (only the modules we use: core, imgproc, imgcodecs; cmake/FindOpenCV.cmake).
set(SPVIT_HAVE_OPENCV OFF)
if(NOT SPVIT_WITH_OPENCV STREQUAL "OFF")
  find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
  if(OpenCV_FOUND)
    set(SPVIT_HAVE_OPENCV ON)
  endif()
endif()
spvit_feature(OPENCV SPVIT_HAVE_OPENCV
              "apt-get install libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev (scripts/install-deps.sh)")

# ---- OpenSlide.
set(SPVIT_HAVE_OPENSLIDE OFF)
if(NOT SPVIT_WITH_OPENSLIDE STREQUAL "OFF")
  find_package(OpenSlide)
  if(OpenSlide_FOUND)
    set(SPVIT_HAVE_OPENSLIDE ON)
  endif()
endif()
spvit_feature(OPENSLIDE SPVIT_HAVE_OPENSLIDE "apt-get install libopenslide-dev (scripts/install-deps.sh)")

# ---- libtiff (the pyramidal label masks of spvit infer).
set(SPVIT_HAVE_TIFF OFF)
if(NOT SPVIT_WITH_TIFF STREQUAL "OFF")
  find_package(TIFF QUIET)
  if(TIFF_FOUND)
    set(SPVIT_HAVE_TIFF ON)
  endif()
endif()
spvit_feature(TIFF SPVIT_HAVE_TIFF "apt-get install libtiff-dev (scripts/install-deps.sh)")

# ---- spvit infer: whole-slide inference needs OpenCV and libtiff (OpenSlide adds the slide formats).
set(SPVIT_HAVE_INFER OFF)
if(SPVIT_HAVE_OPENCV AND SPVIT_HAVE_TIFF)
  set(SPVIT_HAVE_INFER ON)
endif()

# Values for the generated build_info.h (0/1 so they can be used in #if).
foreach(f CUDA NCCL OPENCV OPENSLIDE TIFF INFER)
  if(SPVIT_HAVE_${f})
    set(SPVIT_HAVE_${f}_01 1)
  else()
    set(SPVIT_HAVE_${f}_01 0)
  endif()
endforeach()
