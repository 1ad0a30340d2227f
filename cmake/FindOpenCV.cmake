# FindOpenCV: OpenCV's own CMake package when it is installed, otherwise the per-module libraries and headers.
#
# Why a find module: in Debian bookworm only the meta package libopencv-dev ships OpenCVConfig.cmake (and
# opencv4.pc); it drags in every OpenCV module with VTK, FFmpeg and OpenEXR (+320 MB installed, measured with
# `apt-get install -s`). spvit uses three modules, whose -dev packages (libopencv-core-dev, libopencv-imgproc-dev,
# libopencv-imgcodecs-dev) carry the headers and libraries but no CMake package. This module finds either.
#
# Input: the COMPONENTS asked for (default: core). Output: OpenCV_FOUND, OpenCV_VERSION, OpenCV_INCLUDE_DIRS,
# OpenCV_LIBS (imported targets opencv_<module>), like OpenCVConfig.cmake.
set(_spvit_opencv_modules ${OpenCV_FIND_COMPONENTS})
if(NOT _spvit_opencv_modules)
  set(_spvit_opencv_modules core)
endif()

find_package(OpenCV CONFIG QUIET COMPONENTS ${_spvit_opencv_modules})
if(OpenCV_FOUND)
  include(FindPackageHandleStandardArgs)
  find_package_handle_standard_args(OpenCV CONFIG_MODE)
  return()
endif()

find_path(OpenCV_INCLUDE_DIR opencv2/core/version.hpp PATH_SUFFIXES opencv4)
set(OpenCV_LIBS "")
set(_spvit_opencv_missing "")
foreach(_module ${_spvit_opencv_modules})
  find_library(OpenCV_${_module}_LIBRARY NAMES opencv_${_module})
  mark_as_advanced(OpenCV_${_module}_LIBRARY)
  if(OpenCV_${_module}_LIBRARY AND OpenCV_INCLUDE_DIR)
    set(OpenCV_${_module}_FOUND TRUE)
    if(NOT TARGET opencv_${_module})
      add_library(opencv_${_module} UNKNOWN IMPORTED)
      set_target_properties(opencv_${_module} PROPERTIES IMPORTED_LOCATION "${OpenCV_${_module}_LIBRARY}"
                            INTERFACE_INCLUDE_DIRECTORIES "${OpenCV_INCLUDE_DIR}")
    endif()
    list(APPEND OpenCV_LIBS opencv_${_module})
  else()
    list(APPEND _spvit_opencv_missing ${_module})
  endif()
endforeach()

# The version from opencv2/core/version.hpp (CV_VERSION_MAJOR/MINOR/REVISION).
if(OpenCV_INCLUDE_DIR)
  file(STRINGS "${OpenCV_INCLUDE_DIR}/opencv2/core/version.hpp" _spvit_opencv_version_lines
       REGEX "#define CV_VERSION_(MAJOR|MINOR|REVISION) ")
  foreach(_part MAJOR MINOR REVISION)
    string(REGEX REPLACE ".*#define CV_VERSION_${_part} +([0-9]+).*" "\\1" _spvit_opencv_${_part}
           "${_spvit_opencv_version_lines}")
  endforeach()
  set(OpenCV_VERSION "${_spvit_opencv_MAJOR}.${_spvit_opencv_MINOR}.${_spvit_opencv_REVISION}")
endif()
set(OpenCV_INCLUDE_DIRS "${OpenCV_INCLUDE_DIR}")

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(OpenCV REQUIRED_VARS OpenCV_INCLUDE_DIR OpenCV_LIBS VERSION_VAR OpenCV_VERSION
                                  HANDLE_COMPONENTS)
mark_as_advanced(OpenCV_INCLUDE_DIR)
