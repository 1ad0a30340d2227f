# text_lines(<text> <out>): the lines of a text as a CMake list. Semicolons (CMake's list separator) become commas
# first, so a line never splits in two; the scripts that use it only match patterns without semicolons.
function(text_lines text out)
  string(REPLACE ";" "," text "${text}")
  string(REPLACE "\n" ";" lines "${text}")
  set(${out} "${lines}" PARENT_SCOPE)
endfunction()
