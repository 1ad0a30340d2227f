# Data layer tests (included from tests/CMakeLists.txt when src/data/data.cmake defines spvit_data).
if(TARGET spvit_data)
  spvit_add_test_executable(spvit_data_tests
    data/test_synthetic.cpp data/test_formats.cpp data/test_augment.cpp data/test_loader.cpp
    data/test_annotations.cpp data/test_nifti_file.cpp data/test_nifti_dataset.cpp
    data/test_volume_resample.cpp)
  target_link_libraries(spvit_data_tests PRIVATE spvit_data)
  # The bad-input tests write malformed HDF5 files with the C API (include dirs only: the shared PCH's flags stay).
  target_include_directories(spvit_data_tests SYSTEM PRIVATE ${HDF5_C_INCLUDE_DIRS})
  add_test(NAME data COMMAND ${SPVIT_MPIRUN} 1 ${SPVIT_MPIRUN_FLAGS} $<TARGET_FILE:spvit_data_tests>)
  set_tests_properties(data PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 600)

  # `spvit synth` as a user runs it, and its error paths.
  set(_synth_out ${CMAKE_CURRENT_BINARY_DIR}/synth_test)
  spvit_add_mpi_test(cli_synth_h5 NP 1 COMMAND $<TARGET_FILE:spvit> synth --kind mri --count 2 --size 24 --out ${_synth_out}.h5)
  set_tests_properties(cli_synth_h5 PROPERTIES PASS_REGULAR_EXPRESSION "2 samples of 24x24x24, 1 channel\\(s\\), 4 classes")
  if(SPVIT_HAVE_OPENCV)
    spvit_add_mpi_test(cli_synth_folder NP 1 COMMAND $<TARGET_FILE:spvit> synth --kind pathology --count 2 --size 64 96
                       --out ${_synth_out}_folder)
    set_tests_properties(cli_synth_folder PROPERTIES PASS_REGULAR_EXPRESSION "2 samples of 64x96, 3 channel\\(s\\), 4 classes")
  endif()
  if(TARGET spvit_infer)
    spvit_add_mpi_test(cli_synth_slides NP 1 COMMAND $<TARGET_FILE:spvit> synth --format slides --count 2 --size 300 400
                       --mpp 0.25 --out ${_synth_out}_slides)
    set_tests_properties(cli_synth_slides PROPERTIES FIXTURES_SETUP synth_slides
                         PASS_REGULAR_EXPRESSION "wrote 2 synthetic slide\\(s\\) of 300x400 \\(HxW\\) at 0.25 um/px with [1-9][0-9]* annotation")
    # `spvit data check` on them: a class data.classes does not name is a problem (exit 2) naming the known ones;
    # a data.mpp the slides cannot give is another.
    set(_check ${SPVIT_BIN} data check --config ${PROJECT_SOURCE_DIR}/configs/slides-cpu.yaml
               --set data.path=${_synth_out}_slides --set train.out_dir=${_synth_out}_check)
    spvit_add_failure_test(cli_data_check_unknown_class NP 1
                           REGEX "use class '(gland|nuclei)', which data.classes does not name \\(known: tissue\\).*[1-9][0-9]* problem"
                           COMMAND ${_check} --set "data.classes={tissue: 1}")
    spvit_add_failure_test(cli_data_check_finer_mpp NP 1 REGEX "scanned at 0.25.* coarser than data.mpp = 0.1"
                           COMMAND ${_check} --set data.mpp=0.1)
    spvit_add_mpi_test(cli_data_check_ok NP 1 COMMAND ${_check})
    set_tests_properties(cli_data_check_ok PROPERTIES
                         PASS_REGULAR_EXPRESSION "2 train slide\\(s\\), 0 validation slide\\(s\\), [1-9][0-9]* polygon\\(s\\): 0 problem")
    # The same slides with their ASAP XML annotations (manifest-asap.csv): valid polygons, none repaired.
    spvit_add_mpi_test(cli_data_check_asap NP 1 COMMAND ${_check} --set data.path=${_synth_out}_slides/manifest-asap.csv)
    set_tests_properties(cli_data_check_asap PROPERTIES PASS_REGULAR_EXPRESSION
                         "slide_000.xml: [1-9][0-9]* annotation.*2 train slide\\(s\\), 0 validation slide\\(s\\), [1-9][0-9]* polygon\\(s\\): 0 problem"
                         FAIL_REGULAR_EXPRESSION "repaired")
    set_tests_properties(cli_data_check_unknown_class cli_data_check_finer_mpp cli_data_check_ok cli_data_check_asap PROPERTIES
                         FIXTURES_REQUIRED synth_slides)
  endif()
  # NIfTI: `spvit synth --format nifti` (nnU-Net v2 layout, 2 channels, anisotropic spacing) and `spvit data check`
  # on it; a label value dataset.json does not list (case_002's label replaced by a file holding 9) is a problem
  # naming the case, exit 2.
  spvit_add_mpi_test(cli_synth_nifti NP 1 COMMAND $<TARGET_FILE:spvit> synth --kind mri --format nifti --count 5
                     --val 1 --size 24 32 32 --channels 2 --out ${_synth_out}_nifti)
  set_tests_properties(cli_synth_nifti PROPERTIES FIXTURES_SETUP synth_nifti PASS_REGULAR_EXPRESSION
                       "wrote 5 synthetic MRI case\\(s\\) of 24x32x32 voxels.*2 channel\\(s\\), spacing 0.9 x 0.9 x 2.5 mm, in the nnU-Net v2 layout")
  set(_check_nifti ${SPVIT_BIN} data check --config ${PROJECT_SOURCE_DIR}/configs/unetr-3d-volume.yaml
                   --set data.source=nifti --set data.path=${_synth_out}_nifti --set model.channels=2
                   --set train.out_dir=${_synth_out}_nifti_check)
  spvit_add_mpi_test(cli_data_check_nifti NP 1 COMMAND ${_check_nifti})
  set_tests_properties(cli_data_check_nifti PROPERTIES FIXTURES_REQUIRED synth_nifti PASS_REGULAR_EXPRESSION
                       "\\[train\\] case_001: 32x32x24 voxels \\(i j k\\), 0.9 x 0.9 x 2.5 mm; background [0-9.]+% edema.*normalisation of channel 1 \\(T1w\\): zscore.*3 train case\\(s\\), 1 validation case\\(s\\): 0 problem")
  spvit_add_failure_test(cli_data_check_nifti_bad_label NP 1
                         REGEX "case_002.*holds the value 9, which dataset.json's labels do not list.*1 problem"
                         COMMAND ${_check_nifti} --set data.path=${_synth_out}_nifti_bad)
  add_test(NAME cli_nifti_bad_fixture COMMAND ${CMAKE_COMMAND} -E copy_directory ${_synth_out}_nifti ${_synth_out}_nifti_bad)
  # python3-nibabel (scripts/install-deps.sh) writes the bad label: case_002's own header, one voxel set to 9.
  add_test(NAME cli_nifti_bad_label_file COMMAND /usr/bin/python3 -c
           "import nibabel as n, numpy as np; p='${_synth_out}_nifti_bad/labelsTr/case_002.nii.gz'; i=n.load(p); d=np.asarray(i.dataobj).copy(); d[0,0,0]=9; n.save(n.Nifti1Image(d, i.affine, i.header), p)")
  set_tests_properties(cli_nifti_bad_fixture PROPERTIES FIXTURES_REQUIRED synth_nifti FIXTURES_SETUP nifti_bad_copy)
  set_tests_properties(cli_nifti_bad_label_file PROPERTIES FIXTURES_REQUIRED nifti_bad_copy FIXTURES_SETUP nifti_bad)
  set_tests_properties(cli_data_check_nifti_bad_label PROPERTIES FIXTURES_REQUIRED nifti_bad)
  spvit_add_failure_test(cli_synth_mri_folder NP 1 REGEX "need an HDF5 file \\(--out NAME.h5\\), not the folder 'vols'"
                         COMMAND $<TARGET_FILE:spvit> synth --kind mri --size 16 --out vols)
  spvit_add_failure_test(cli_synth_bad_size NP 1 REGEX "--size takes 1 or 2 values for --kind pathology, got 3"
                         COMMAND $<TARGET_FILE:spvit> synth --size 8 8 8 --out x.h5)
endif()
