# Faults a scheduler or a filesystem throws at a training run (included from tests/CMakeLists.txt): preemption
# signals, outputs that cannot be written, resumes with changed settings. Each is a bash script driving `spvit`
# under mpirun as a user's job would; docs/cluster.md has the exit codes they check.
set(_faults_dir ${CMAKE_CURRENT_BINARY_DIR}/faults)
set(_mpirun2 ${SPVIT_MPIRUN} 2 ${SPVIT_MPIRUN_FLAGS})

# _spvit_fault_test(NAME TIMEOUT SCRIPT ARGS...): TIMEOUT is about 3x the time measured on the 2-core machine.
function(_spvit_fault_test name timeout script)
  add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/train/${script} ${ARGN})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${SPVIT_TEST_ENV}" TIMEOUT ${timeout} PROCESSORS 2
                       LABELS "mpi;faults")
endfunction()

# Measured ~65 s each (three runs of 150 steps) while another build ran.
foreach(_mode usr1-mpirun term-rank1 term-all)
  _spvit_fault_test(preempt_${_mode} 240 preemption_test.sh ${_mode} ${SPVIT_BIN} ${_faults_dir}/preempt_${_mode}
                    ${_mpirun2})
endforeach()
# Measured 5-26 s each.
foreach(_mode inject-checkpoint inject-metrics inject-eval tmpfs)
  _spvit_fault_test(write_failure_${_mode} 120 write_failure_test.sh ${_mode} ${SPVIT_BIN}
                    ${_faults_dir}/write_${_mode} ${_mpirun2})
endforeach()
# Measured 47 s.
_spvit_fault_test(resume_safety 180 resume_safety_test.sh ${SPVIT_BIN} ${_faults_dir}/resume ${MPIEXEC_EXECUTABLE}
                  ${SPVIT_MPIRUN_FLAGS})
