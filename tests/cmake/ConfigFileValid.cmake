# cmake -DSPVIT=<spvit binary> -DFILE=<yaml> -DHAVE_CUDA=ON|OFF -P ConfigFileValid.cmake
# Passes when `spvit config -c FILE` accepts FILE. A configuration written for the GPU build (train.precision bf16 or
# fp16) cannot pass on a build without CUDA: there the refusal must be exactly that one — the message naming
# 'train.precision' and the CUDA build, exit status 2 — and the file must pass with train.precision = fp32, so that
# every other key is still checked.
execute_process(COMMAND ${SPVIT} config -c ${FILE} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message("ok: spvit config accepts ${FILE}")
  return()
endif()
if(HAVE_CUDA OR NOT rc EQUAL 2 OR NOT "${err}" MATCHES "config key 'train\\.precision' = (bf16|fp16) needs a CUDA build of spvit")
  message(FATAL_ERROR "spvit config refused ${FILE} (exit status ${rc}):\n${out}${err}")
endif()
execute_process(COMMAND ${SPVIT} config -c ${FILE} --set train.precision=fp32
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spvit config refused ${FILE} with train.precision=fp32 (exit status ${rc}):\n${out}${err}")
endif()
message("ok: ${FILE} is for the GPU build (train.precision needs CUDA); with train.precision=fp32 spvit config accepts it")
