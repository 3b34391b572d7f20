# Helpers that give every target the same shape: warnings, torch usage with one shared
# precompiled header, and tests labelled by what they need (unit, mpi, integration, gpu).

# -Winvalid-pch: a precompiled header that silently stops applying costs minutes of build.
set(LIKENESS_WARNINGS -Wall -Wextra -Wno-unused-parameter -Winvalid-pch)

# Libtorch's headers cost ~10 s per translation unit. Targets that need them reuse one
# precompiled header built once by likeness_torch_pch; files that do not need torch live in
# targets that never call likeness_use_torch.
add_library(likeness_torch_pch STATIC ${PROJECT_SOURCE_DIR}/common/torch_pch.cc)
target_link_libraries(likeness_torch_pch PUBLIC ${TORCH_LIBRARIES})
target_include_directories(likeness_torch_pch SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
target_compile_options(likeness_torch_pch PUBLIC ${TORCH_CXX_FLAGS})
target_precompile_headers(likeness_torch_pch PRIVATE <torch/torch.h>)

function(likeness_use_torch target)
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "EXECUTABLE")
    # gcc refuses a -fPIC header in a -fPIE translation unit and silently re-reads all of
    # libtorch (~50 s a file). -fPIC objects link fine into a PIE executable.
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
    target_link_libraries(${target} PRIVATE likeness_torch_pch)
  else()
    target_link_libraries(${target} PUBLIC likeness_torch_pch)
  endif()
  target_precompile_headers(${target} REUSE_FROM likeness_torch_pch)
endfunction()

# likeness_library(NAME SOURCES ... [DEPS ...] [TORCH])
function(likeness_library name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${LIKENESS_WARNINGS}>)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  if(ARG_TORCH)
    likeness_use_torch(${name})
  endif()
endfunction()

# likeness_binary(NAME SOURCES ... [DEPS ...] [TORCH])
function(likeness_binary name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${LIKENESS_WARNINGS}>)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  if(ARG_TORCH)
    likeness_use_torch(${name})
  endif()
endfunction()

# likeness_test(NAME SOURCES ... [DEPS ...] [LABELS ...] [TIMEOUT s] [MPI_RANKS n] [TORCH])
# MPI_RANKS: ctest runs the binary as `mpirun -np n` (label it mpi); without mpirun it runs
# alone and its cases GTEST_SKIP (a world of one), reported as skipped.
# One binary per subject; the ctest name is NAME so `ctest -R tokenizer` finds it.
# Test data defaults to ../shared/data beside the checkout; tests/test_data.h reads the
# LIKENESS_* environment variables first (DESIGN.md).
function(likeness_test name)
  cmake_parse_arguments(ARG "TORCH" "TIMEOUT;MPI_RANKS" "SOURCES;DEPS;LABELS" ${ARGN})
  set(bin test_${name})
  add_executable(${bin} ${ARG_SOURCES})
  set_target_properties(${bin} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/bin)
  target_include_directories(${bin} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(${bin} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${LIKENESS_WARNINGS}>)
  target_link_libraries(${bin} PRIVATE ${ARG_DEPS} likeness_test_support
                        GTest::gtest GTest::gmock GTest::gtest_main)
  if(ARG_TORCH)
    likeness_use_torch(${bin})
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  if(ARG_MPI_RANKS AND MPIEXEC_EXECUTABLE)
    # --oversubscribe: CI machines may have fewer cores than ranks. Running as root (containers)
    # needs Open MPI's two opt-in variables; they are ignored otherwise.
    add_test(NAME ${name} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ARG_MPI_RANKS}
                                  --oversubscribe $<TARGET_FILE:${bin}>)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT
                         "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
  else()
    add_test(NAME ${name} COMMAND ${bin})
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
  if(ARG_MPI_RANKS)
    set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
  endif()
  if("gpu" IN_LIST ARG_LABELS)
    # Without a GPU every case skips; ctest then reports the test as skipped, not passed.
    set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
  endif()
endfunction()
