# Whole-slide inference (docs/inference.md): the streaming tiler and the writers, on the data layer's slide reader and
# tissue detector. Included from src/CMakeLists.txt (paths relative to src/). Needs OpenCV and libtiff.
if(SPVIT_HAVE_INFER)  # OpenCV and libtiff (cmake/SpvitDependencies.cmake)
  spvit_add_library(spvit_infer
    SOURCES infer/slide_mat.cpp infer/tiler.cpp infer/tiff_writer.cpp infer/writers.cpp
            infer/synthetic_slides.cpp
            infer/model_predictor.cpp infer/pipeline.cpp
            infer/volume_window.cpp infer/volume.cpp infer/volume_evaluation.cpp
    DEPS spvit_train)
  # Include dirs and libraries only (no compile definitions: every target keeps the shared PCH's flags).
  target_link_libraries(spvit_infer PUBLIC ${OpenCV_LIBS} TIFF::TIFF nlohmann_json::nlohmann_json)
  target_include_directories(spvit_infer SYSTEM PUBLIC ${OpenCV_INCLUDE_DIRS})
endif()
