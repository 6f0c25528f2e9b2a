// Umbrella header: everything rnnkit offers to C++ programs.
#pragma once

#include "rnnkit/config.hpp"
#include "rnnkit/recurrent.hpp"
