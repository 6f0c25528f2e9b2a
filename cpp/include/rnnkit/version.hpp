// The library's version: the one place it is written. CMake (project VERSION) and the Python package
// (pyproject.toml's dynamic version) read these three numbers from here.
#pragma once

#define RNNKIT_VERSION_MAJOR 0
#define RNNKIT_VERSION_MINOR 1
#define RNNKIT_VERSION_PATCH 0

#define RNNKIT_STRINGIFY_(x) #x
#define RNNKIT_STRINGIFY(x) RNNKIT_STRINGIFY_(x)
#define RNNKIT_VERSION                                                                   \
    RNNKIT_STRINGIFY(RNNKIT_VERSION_MAJOR) "." RNNKIT_STRINGIFY(RNNKIT_VERSION_MINOR) "." \
        RNNKIT_STRINGIFY(RNNKIT_VERSION_PATCH)
