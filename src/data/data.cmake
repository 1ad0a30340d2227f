# The data layer (docs/architecture.md, "Dependencies between layers"): datasets (synthetic, image folder, HDF5),
# augmentation, the loader, token sampling (patch layouts of samples: links the patch layer).
# Included from src/CMakeLists.txt, so paths are relative to src/.
spvit_add_library(spvit_data
  SOURCES data/dataset.cpp data/procedural.cpp data/synthetic_pathology.cpp data/synthetic_mri.cpp data/augment.cpp
          data/hdf5_dataset.cpp data/image_folder.cpp data/loader.cpp data/sources.cpp data/token_sampling.cpp
          data/annotations_geojson.cpp data/annotations_asap.cpp data/annotation_raster.cpp
          data/polygon_geometry.cpp data/nifti_file.cpp data/nifti_layout.cpp
          data/nifti_normalization.cpp data/nifti_dataset.cpp data/nifti_check.cpp data/synthetic_nifti.cpp
          data/volume_resample.cpp data/nifti_cache.cpp data/nifti_resampled.cpp
  DEPS spvit_core spvit_patch nlohmann_json::nlohmann_json pugixml::pugixml GEOS::geos_c ${HDF5_C_LIBRARIES} Threads::Threads)
# HDF5's include dirs only (not its compile definitions: every target must keep the flags of the shared PCH).
target_include_directories(spvit_data SYSTEM PRIVATE ${HDF5_C_INCLUDE_DIRS} ${NIFTI_INCLUDE_DIR})
target_link_libraries(spvit_data PRIVATE ${NIFTI2_LIBRARY} ${ZNZ_LIBRARY})
if(SPVIT_HAVE_OPENCV)
  # OpenCV is private: callers see tensors only.
  target_link_libraries(spvit_data PRIVATE ${OpenCV_LIBS})
  target_include_directories(spvit_data SYSTEM PRIVATE ${OpenCV_INCLUDE_DIRS})
endif()
# Whole-slide images (data.source: slides, and the reader `spvit infer` uses): OpenCV and libtiff (SPVIT_HAVE_INFER),
# OpenSlide where installed (without it only plain PNG/JPEG/TIFF images open, as one level).
if(SPVIT_HAVE_INFER)
  target_sources(spvit_data PRIVATE data/slide.cpp data/slide_scaled.cpp data/tissue.cpp data/slide_manifest.cpp
                                    data/slide_dataset.cpp data/slide_check.cpp data/label_mask.cpp)
  target_link_libraries(spvit_data PRIVATE TIFF::TIFF)
  if(SPVIT_HAVE_OPENSLIDE)
    target_link_libraries(spvit_data PRIVATE OpenSlide::OpenSlide)
  endif()
endif()
