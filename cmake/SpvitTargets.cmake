# Helpers shared by every spvit target: include paths, warnings, and the one precompiled header.
#
# All targets reuse a single precompiled header (LibTorch is ~20 s of parsing per file without it). For gcc to accept
# the reused PCH, every target must compile with the same flags and definitions, so feature switches live in the
# generated build_info.h, never in per-target compile definitions.

set(SPVIT_GENERATED_INCLUDE ${CMAKE_BINARY_DIR}/generated)

function(spvit_target_defaults tgt)
  if(SPVIT_FMT_SHIM_DIR)
    target_include_directories(${tgt} BEFORE PUBLIC ${SPVIT_FMT_SHIM_DIR})  # see SpvitDependencies.cmake
  endif()
  target_include_directories(${tgt} PUBLIC ${PROJECT_SOURCE_DIR}/include ${SPVIT_GENERATED_INCLUDE})
  # C++ only: nvcc rejects these flags (CUDA sources of spvit_kernels).
  target_compile_options(${tgt} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wno-unused-parameter>")
  if(SPVIT_USE_PCH AND TARGET spvit_pch AND NOT tgt STREQUAL "spvit_pch")
    target_precompile_headers(${tgt} REUSE_FROM spvit_pch)
  endif()
endfunction()

# spvit_add_library(<name> SOURCES ... DEPS ...): one static library per layer.
function(spvit_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  spvit_target_defaults(${name})
endfunction()
