# A header-only package installs headers, CMake and pkg-config files and the licence: no binaries.
file(GLOB_RECURSE files RELATIVE ${STAGE} ${STAGE}/*)
foreach(f ${files})
  if(NOT f MATCHES "^(include/modelres/|share/cmake/modelres/|share/licenses/modelres/|share/pkgconfig/modelres(-online|-curl)?\\.pc$)")
    message(FATAL_ERROR "unexpected file in the installed tree: ${f}")
  endif()
endforeach()
foreach(f include/modelres/modelres.hpp share/cmake/modelres/modelresConfig.cmake
          share/cmake/modelres/modelresConfigVersion.cmake share/cmake/modelres/modelresTargets.cmake
          share/pkgconfig/modelres.pc)
  if(NOT EXISTS ${STAGE}/${f})
    message(FATAL_ERROR "missing from the installed tree: ${f}")
  endif()
endforeach()
