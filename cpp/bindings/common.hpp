// Helpers every binding file shares (module.cpp, seq2seq.cpp).
#pragma once

#include <pybind11/numpy.h>

#include <string>

namespace rnnkit_bindings {

// "(2, 3)" / "(4,)": an array's shape as Python prints it, for error messages.
inline std::string shape_str(const pybind11::array& a) {
    std::string s = "(";
    for (pybind11::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

}  // namespace rnnkit_bindings
