# Whole-slide inference (docs/inference.md): slide reading, tissue detection, the streaming tiler and the writers.
# Included from src/CMakeLists.txt (paths relative to src/). Needs OpenCV and libtiff; OpenSlide is optional (without
# it only plain PNG/JPEG/TIFF images are read).
if(SPVIT_HAVE_INFER)  # OpenCV and libtiff (cmake/SpvitDependencies.cmake)
  spvit_add_library(spvit_infer
    SOURCES infer/slide.cpp infer/tissue.cpp infer/tiler.cpp infer/tiff_writer.cpp infer/writers.cpp
            infer/synthetic_slides.cpp
            infer/model_predictor.cpp infer/pipeline.cpp
    DEPS spvit_train)
  # Include dirs and libraries only (no compile definitions: every target keeps the shared PCH's flags).
  target_link_libraries(spvit_infer PUBLIC ${OpenCV_LIBS} TIFF::TIFF nlohmann_json::nlohmann_json)
  target_include_directories(spvit_infer SYSTEM PUBLIC ${OpenCV_INCLUDE_DIRS})
  if(SPVIT_HAVE_OPENSLIDE)
    target_link_libraries(spvit_infer PUBLIC OpenSlide::OpenSlide)
  endif()
endif()
