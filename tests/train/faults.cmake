# Faults a scheduler or a filesystem throws at a training run (included from tests/CMakeLists.txt): preemption
# signals, outputs that cannot be written, resumes with changed settings. Each is a bash script driving `spvit`
# under mpirun as a user's job would; docs/cluster.md has the exit codes they check.
# TIMEOUTs: about 3x the time measured on the 2-core CI machine (noted beside each).
set(_faults_dir ${CMAKE_CURRENT_BINARY_DIR}/faults)
set(_mpirun ${SPVIT_MPIRUN} 2 ${SPVIT_MPIRUN_FLAGS})
foreach(_mode usr1-mpirun term-rank1 term-all)
  add_test(NAME preempt_${_mode}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/preemption_test.sh ${_mode} ${SPVIT_BIN}
                   ${_faults_dir}/preempt_${_mode} ${_mpirun})
  set_tests_properties(preempt_${_mode} PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 240 PROCESSORS 2
                       LABELS "mpi;faults")
endforeach()
foreach(_mode inject-checkpoint inject-metrics inject-eval tmpfs)
  add_test(NAME write_failure_${_mode}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/write_failure_test.sh ${_mode} ${SPVIT_BIN}
                   ${_faults_dir}/write_${_mode} ${_mpirun})
  set_tests_properties(write_failure_${_mode} PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 180 PROCESSORS 2
                       LABELS "mpi;faults")
endforeach()
add_test(NAME resume_safety
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/resume_safety_test.sh ${SPVIT_BIN} ${_faults_dir}/resume
                 ${MPIEXEC_EXECUTABLE} ${SPVIT_MPIRUN_FLAGS})
set_tests_properties(resume_safety PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT 300 PROCESSORS 2
                     LABELS "mpi;faults")
