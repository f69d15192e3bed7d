// Catch2 v2's runner, compiled with the same flags as the tests (the
// prebuilt Catch2WithMain is built with exceptions on).
#define CATCH_CONFIG_MAIN
#include "../support/catch.hpp"
