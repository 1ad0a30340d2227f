# ccache speeds up rebuilds; the sloppiness settings let it cache objects built with a precompiled header.
if(SPVIT_USE_CCACHE)
  find_program(SPVIT_CCACHE ccache)
  if(SPVIT_CCACHE)
    set(SPVIT_CCACHE_LAUNCHER ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        ${SPVIT_CCACHE})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${SPVIT_CCACHE_LAUNCHER})
    set(CMAKE_C_COMPILER_LAUNCHER ${SPVIT_CCACHE_LAUNCHER})
    set(CMAKE_CUDA_COMPILER_LAUNCHER ${SPVIT_CCACHE_LAUNCHER})
  endif()
endif()
