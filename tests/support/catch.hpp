// Catch2 v2 (Debian) or v3 (vcpkg, Conan): the tests compile against either.
#pragma once
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif
