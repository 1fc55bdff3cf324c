# Finds nanobind for the Python module (python/): the interpreter and its headers, then the CMake
# package directory `python3 -m nanobind --cmake_dir` names. Sets CNNRT_NANOBIND_FOUND.
set(CNNRT_NANOBIND_FOUND OFF)
if(CNNRT_SANITIZE)
  # An instrumented module cannot load into an uninstrumented interpreter (the sanitizer runtime
  # would have to be preloaded), and stub generation imports it.
  message(STATUS "Python module: off in sanitizer builds (CNNRT_SANITIZE)")
  return()
endif()
find_package(Python 3.8 COMPONENTS Interpreter Development.Module QUIET)
if(Python_FOUND)
  execute_process(COMMAND "${Python_EXECUTABLE}" -m nanobind --cmake_dir
    OUTPUT_VARIABLE CNNRT_NANOBIND_DIR OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE CNNRT_NANOBIND_RC ERROR_QUIET)
  if(CNNRT_NANOBIND_RC EQUAL 0)
    find_package(nanobind CONFIG QUIET PATHS "${CNNRT_NANOBIND_DIR}" NO_DEFAULT_PATH)
  endif()
endif()
if(nanobind_FOUND)
  set(CNNRT_NANOBIND_FOUND ON)
  message(STATUS "Python module: nanobind ${nanobind_VERSION}, Python ${Python_VERSION}")
else()
  message(STATUS "Python module: off (needs Python headers and nanobind: "
                 "python3 -m pip install nanobind)")
endif()
