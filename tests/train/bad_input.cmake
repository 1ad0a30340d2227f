# `spvit train` on 2 ranks with bad input (included from tests/CMakeLists.txt): each run must end with a non-zero
# exit, without hanging, and with a message that names the problem (the file, the expected and actual shape, the
# key). The malformed files are written at test time by spvit_bad_input_fixtures (the ctest fixture `bad_input`).
if(TARGET spvit_data AND TARGET spvit_optim)
  add_executable(spvit_bad_input_fixtures ${CMAKE_CURRENT_LIST_DIR}/bad_input_fixtures.cpp)
  target_link_libraries(spvit_bad_input_fixtures PRIVATE spvit_data)
  # HDF5's include dirs only (not its compile definitions: every target keeps the shared PCH's flags).
  target_include_directories(spvit_bad_input_fixtures SYSTEM PRIVATE ${HDF5_C_INCLUDE_DIRS})
  spvit_target_defaults(spvit_bad_input_fixtures)

  set(_fx ${CMAKE_CURRENT_BINARY_DIR}/bad_input)
  add_test(NAME bad_input_fixtures COMMAND $<TARGET_FILE:spvit_bad_input_fixtures> ${_fx})
  set_tests_properties(bad_input_fixtures PROPERTIES FIXTURES_SETUP bad_input TIMEOUT 120)

  # The demo configuration for two steps (no warmup: a warmup longer than the run would only add a warning to the
  # output), one loader thread, output beside the fixtures; MPI communicators, so that the two ranks may share one GPU
  # (NCCL refuses that) where the tests run on a GPU machine.
  set(_train ${SPVIT_BIN} train -c ${PROJECT_SOURCE_DIR}/configs/tiny-cpu.yaml --set train.steps=2
             --set train.warmup_steps=0 --set data.workers=1 --set dist.backend=mpi --set train.out_dir=${_fx}/run)
  set(_folder ${_train} --set data.source=folder --set data.path)
  set(_hdf5 ${_train} --set data.source=hdf5 --set data.path)

  # name | expected message (a regular expression) | command
  function(_spvit_bad_input name regex)
    spvit_add_failure_test(train_bad_${name} NP 2 REGEX "${regex}" COMMAND ${ARGN})
    set_tests_properties(train_bad_${name} PROPERTIES FIXTURES_REQUIRED bad_input)
  endfunction()

  # Missing files: the training data path, and one image of a folder (deleted, or a dangling link).
  _spvit_bad_input(missing_h5 "cannot open HDF5 file '[^']*/bad_input/no_such\\.h5' \\(missing or unreadable\\)"
                   ${_hdf5}=${_fx}/no_such.h5)
  _spvit_bad_input(truncated_h5 "HDF5 error while opening the file in '[^']*/bad_input/truncated\\.h5': truncated file"
                   ${_hdf5}=${_fx}/truncated.h5)
  # 'images' without a channel axis.
  _spvit_bad_input(hdf5_rank3 "HDF5 dataset 'images' in '[^']*/bad_input/rank3\\.h5' has rank 3 \\(shape 2x32x32\\); expected rank 4 \\[N, H, W, C\\] or 5"
                   ${_hdf5}=${_fx}/rank3.h5)
  # Unknown configuration keys, on the command line and in a file: reported once (rank 0), exit status 2.
  _spvit_bad_input(unknown_key_set "configuration error: unknown config key 'train\\.stepz'"
                   ${_train} --set train.stepz=3)
  _spvit_bad_input(unknown_key_file "unknown config key 'data\\.pth'.*while loading config file '[^']*/bad_input/misspelled\\.yaml'"
                   ${SPVIT_BIN} train -c ${_fx}/misspelled.yaml)

  if(SPVIT_HAVE_OPENCV)
    _spvit_bad_input(missing_folder "image folder '[^']*/bad_input/no_such_folder' does not exist or is not a folder"
                     ${_folder}=${_fx}/no_such_folder)
    _spvit_bad_input(missing_image "mask '[^']*/missing_image/masks/tile-1\\.png' has no image: there is no '[^']*/missing_image/images/tile-1\\.png'"
                     ${_folder}=${_fx}/missing_image)
    _spvit_bad_input(dangling_image "image '[^']*/dangling_image/images/tile-1\\.png' is a link to '[^']*/nowhere/tile-1\\.png', which does not exist"
                     ${_folder}=${_fx}/dangling_image)
    # Read by the loader's worker: the message also says which sample and batch it was loading.
    _spvit_bad_input(mask_size "mask '[^']*/bad_mask_size/masks/tile-1\\.png' is 16x24 \\(HxW\\) but image '[^']*/bad_mask_size/images/tile-1\\.png' is 32x32.*while loading sample 1 of image folder"
                     ${_folder}=${_fx}/bad_mask_size)
    _spvit_bad_input(corrupt_png "image '[^']*/corrupt_png/images/tile-1\\.png' is not a valid PNG \\(corrupt or truncated header\\)"
                     ${_folder}=${_fx}/corrupt_png)
    _spvit_bad_input(truncated_png "cannot decode image '[^']*/truncated_png/images/tile-1\\.png' \\(corrupt or not an image\\)"
                     ${_folder}=${_fx}/truncated_png)
  endif()
endif()
