// The library's version: the one place it is written. CMake (project VERSION) and the Python package
// (pyproject.toml's dynamic version) read it from here.
#pragma once

#define RNNKIT_VERSION_MAJOR 0
#define RNNKIT_VERSION_MINOR 1
#define RNNKIT_VERSION_PATCH 0
#define RNNKIT_VERSION "0.1.0"
