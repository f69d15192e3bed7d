# cpp-httplib, for the loopback hub of the tests, the demo and the benchmarks:
# its CMake package where it has one (vcpkg, upstream installs), else the
# pkg-config file Debian's libcpp-httplib-dev ships. Sets MODELRES_HTTPLIB in the
# including directory (imported targets are directory-scoped).
find_package(Threads REQUIRED)
find_package(httplib CONFIG QUIET)
if(httplib_FOUND)
  set(MODELRES_HTTPLIB httplib::httplib Threads::Threads)
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
  set(MODELRES_HTTPLIB PkgConfig::HTTPLIB Threads::Threads)
endif()
