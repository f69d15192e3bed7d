# Packs the source tree as a release tarball would hold it (no build trees, no
# .git) into ARCHIVE, and writes its SHA256 beside it.
file(GLOB entries RELATIVE ${SOURCE_DIR} ${SOURCE_DIR}/*)
list(REMOVE_ITEM entries build .git)
file(REMOVE ${ARCHIVE})
execute_process(COMMAND ${CMAKE_COMMAND} -E tar czf ${ARCHIVE} -- ${entries}
  WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "could not pack ${SOURCE_DIR} into ${ARCHIVE}")
endif()
file(SHA256 ${ARCHIVE} sha)
file(WRITE ${ARCHIVE}.sha256 ${sha})
