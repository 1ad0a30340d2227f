# cmake -DMETRICS=<eval>/metrics.json -DMIN_DICE=<x> [-DSAMPLES=<n>] -P check_dice.cmake
# Passes only if `spvit eval`'s metrics JSON reports mean foreground Dice >= MIN_DICE (over SAMPLES samples when
# given). Prints the per-class Dice either way, so a failing run shows which class fell short.
foreach(_var METRICS MIN_DICE)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "check_dice.cmake needs -D${_var}=...")
  endif()
endforeach()
if(NOT EXISTS "${METRICS}")
  message(FATAL_ERROR "no evaluation metrics at '${METRICS}': did spvit eval run?")
endif()
file(READ "${METRICS}" _json)

string(JSON _type ERROR_VARIABLE _err TYPE "${_json}" mean_dice_foreground)
if(_err OR NOT _type STREQUAL "NUMBER")
  # NaN is written as null, and a non-number would make the comparison below silently false.
  message(FATAL_ERROR "'${METRICS}' has no numeric mean_dice_foreground (JSON type: ${_type})")
endif()
string(JSON _dice GET "${_json}" mean_dice_foreground)
string(JSON _samples ERROR_VARIABLE _err GET "${_json}" samples)
if(_err)
  message(FATAL_ERROR "'${METRICS}' has no samples count: ${_err}")
endif()
set(_per_class "")
string(JSON _classes LENGTH "${_json}" dice_per_class)
math(EXPR _last "${_classes} - 1")
foreach(_k RANGE ${_last})
  string(JSON _d GET "${_json}" dice_per_class ${_k})
  string(APPEND _per_class " ${_d}")
endforeach()
message("evaluated ${_samples} held-out sample(s): mean foreground Dice ${_dice}; per class:${_per_class}")

# With no samples every class is "absent everywhere" and scores Dice 1: never a pass.
if(NOT _samples GREATER 0)
  message(FATAL_ERROR "the metrics in '${METRICS}' cover no samples")
endif()
if(DEFINED SAMPLES AND NOT _samples EQUAL SAMPLES)
  message(FATAL_ERROR "expected ${SAMPLES} evaluated samples, the metrics report ${_samples}")
endif()
# CMake compares numbers as doubles (LESS, not string order), so "0.9" vs "0.85" is compared numerically.
if(_dice LESS MIN_DICE)
  message(FATAL_ERROR "mean foreground Dice ${_dice} is below the required ${MIN_DICE}")
endif()
message("ok: mean foreground Dice ${_dice} >= ${MIN_DICE}")
