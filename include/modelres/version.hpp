// The library version: the one place it is written. CMake, the CLI and the
// package files read it from here.
#pragma once

#define MODELRES_VERSION_MAJOR 0
#define MODELRES_VERSION_MINOR 1
#define MODELRES_VERSION_PATCH 0
#define MODELRES_VERSION_STRING "0.1.0"
