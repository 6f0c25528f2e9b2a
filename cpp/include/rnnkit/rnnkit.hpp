// Umbrella header: everything rnnkit offers to C++ programs.
#pragma once

#include "rnnkit/attention.hpp"
#include "rnnkit/cells.hpp"
#include "rnnkit/config.hpp"
#include "rnnkit/layers.hpp"
#include "rnnkit/losses.hpp"
#include "rnnkit/model.hpp"
#include "rnnkit/optim.hpp"
#include "rnnkit/recurrent.hpp"
#include "rnnkit/seq2seq.hpp"
