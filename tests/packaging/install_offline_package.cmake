# Configures, builds and installs modelres from SOURCE_DIR with
# MODELRES_WITH_ONLINE=OFF into PREFIX: the package a machine without the
# online dependencies would build.
file(REMOVE_RECURSE ${BUILD} ${PREFIX})
foreach(step
    "${CMAKE_COMMAND};-S;${SOURCE_DIR};-B;${BUILD};-G;${GENERATOR};-DCMAKE_CXX_COMPILER=${CXX};-DMODELRES_WITH_ONLINE=OFF;-DMODELRES_BUILD_TESTS=OFF;-DMODELRES_BUILD_BENCHMARKS=OFF;-DMODELRES_INSTALL=ON"
    "${CMAKE_COMMAND};--build;${BUILD}"
    "${CMAKE_COMMAND};--install;${BUILD};--prefix;${PREFIX}")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${step} failed:\n${out}")
  endif()
endforeach()
if(EXISTS ${PREFIX}/share/cmake/modelres/modelresOnlineTargets.cmake)
  message(FATAL_ERROR "built without online, yet installed the online targets")
endif()
