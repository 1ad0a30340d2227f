# The adaptive patcher layer (docs/adaptive-patching.md): layouts, scorers, trees, extract/paste, image I/O.
# Included from src/CMakeLists.txt, so paths are relative to src/.
spvit_add_library(spvit_patch
  SOURCES patch/layout.cpp patch/layout_io.cpp patch/pixel_maps.cpp patch/scorer.cpp patch/patcher.cpp
          patch/extract.cpp patch/image_io.cpp
  DEPS spvit_core nlohmann_json::nlohmann_json ${HDF5_C_LIBRARIES})
# HDF5's include dirs only (not its compile definitions: every target must keep the flags of the shared PCH).
target_include_directories(spvit_patch SYSTEM PRIVATE ${HDF5_C_INCLUDE_DIRS})
if(SPVIT_HAVE_OPENCV)
  # OpenCV is private: callers see tensors only, so they need neither its headers nor its flags.
  target_link_libraries(spvit_patch PRIVATE ${OpenCV_LIBS})
endif()
