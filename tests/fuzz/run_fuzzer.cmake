# Runs one libFuzzer target for a bounded time on a fresh corpus (ctest calls it via cmake -P).
# A fresh corpus each run keeps the source tree clean (libFuzzer writes new inputs into the first
# corpus folder) and the run independent of earlier ones; the seed folder is read-only input.
# Variables: FUZZER, SEED_DIR, DICT, WORK_DIR, RUNS, MAX_SECONDS, MAX_LEN.
foreach(var FUZZER SEED_DIR DICT WORK_DIR RUNS MAX_SECONDS MAX_LEN)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK_DIR}/corpus)
file(MAKE_DIRECTORY ${WORK_DIR}/corpus ${WORK_DIR}/artifacts)
execute_process(
  COMMAND ${FUZZER}
    -runs=${RUNS} -max_total_time=${MAX_SECONDS} -max_len=${MAX_LEN}
    -dict=${DICT} -artifact_prefix=${WORK_DIR}/artifacts/ -print_final_stats=1
    ${WORK_DIR}/corpus ${SEED_DIR}
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${result}); the crashing input is in ${WORK_DIR}/artifacts. "
                      "Reproduce with: ${FUZZER} <that file>")
endif()
