# ccache makes the second build of an unchanged tree nearly free. The sloppiness settings let it
# cache translation units that use the libtorch precompiled header (gcc's .gch embeds
# timestamps and defines that would otherwise make every lookup miss). CCACHE_BASEDIR and
# CCACHE_NOHASHDIR make paths relative, so a second build folder or a clone at another path
# reuses the cache instead of recompiling everything.
find_program(LIKENESS_CCACHE ccache)
if(LIKENESS_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(_likeness_launcher ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      CCACHE_BASEDIR=${CMAKE_SOURCE_DIR} CCACHE_NOHASHDIR=1
      ${LIKENESS_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${_likeness_launcher})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_likeness_launcher})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${_likeness_launcher})
  message(STATUS "Likeness: compiler cache ${LIKENESS_CCACHE}")
endif()
