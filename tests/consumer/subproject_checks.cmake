# modelres pulled in as a subproject (add_subdirectory, FetchContent) builds
# none of its tests, tools or benchmarks, and installs nothing unless the
# parent sets MODELRES_INSTALL.
if(TARGET modelres_tests OR TARGET modelres_cli OR TARGET modelres_demo OR TARGET modelres_benchmarks)
  message(FATAL_ERROR "modelres built its tests, tools or benchmarks as a subproject")
endif()
enable_testing()
add_test(NAME subproject.install_rules_only_when_asked
  COMMAND ${CMAKE_COMMAND} -DBUILD=${CMAKE_BINARY_DIR} -DPREFIX=${CMAKE_BINARY_DIR}/install-check
    -DEXPECT_INSTALL=${MODELRES_INSTALL} -P ${CMAKE_CURRENT_LIST_DIR}/check_subproject_install.cmake)
