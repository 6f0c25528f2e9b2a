// Bindings for the training pieces (dense, embedding, dropout, last step, losses, optimizer updates).
// Python passes C-contiguous arrays of one float dtype; these wrappers check that (an in-place update on
// a silent copy would be lost), release the GIL around every call into the library, and call it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "rnnkit/rnnkit.hpp"

namespace py = pybind11;

namespace {

template <class S>
S* data(py::array& a, const char* name, std::size_t n) {
    if (!a.dtype().is(py::dtype::of<S>()))
        throw py::type_error(std::string(name) + ": expected dtype " + std::string(py::str(py::dtype::of<S>())) +
                             ", got " + std::string(py::str(a.dtype())));
    if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + ": expected a C-contiguous array");
    if (!a.writeable()) throw py::value_error(std::string(name) + ": expected a writeable array");
    if (std::size_t(a.size()) != n)
        throw py::value_error(std::string(name) + ": expected " + std::to_string(n) + " elements, got " +
                              std::to_string(a.size()));
    return static_cast<S*>(a.mutable_data());
}

template <class S>
S* optional_data(py::object o, const char* name, std::size_t n) {
    if (o.is_none()) return nullptr;
    py::array a = o.cast<py::array>();
    return data<S>(a, name, n);
}

bool is_double(const py::array& a) { return a.dtype().is(py::dtype::of<double>()); }

// Calls body.template operator()<S>() with S the dtype of `like` (float32 or float64).
template <class Body>
auto dispatch(const py::array& like, Body&& body) {
    if (is_double(like)) return body(double{});
    if (like.dtype().is(py::dtype::of<float>())) return body(float{});
    throw py::type_error("expected float32 or float64 arrays, got " + std::string(py::str(like.dtype())));
}

}  // namespace

void bind_training(py::module_& m) {
    // y[N, O] = act(x[N, I] W^T + b)
    m.def("dense_forward", [](py::array y, py::array x, py::array W, py::object b, int N, int I, int O,
                              const std::string& act) {
        dispatch(y, [&](auto s) {
            using S = decltype(s);
            S* py_ = data<S>(y, "y", std::size_t(N) * O);
            S* px = data<S>(x, "x", std::size_t(N) * I);
            S* pW = data<S>(W, "weight", std::size_t(O) * I);
            S* pb = optional_data<S>(b, "bias", std::size_t(O));
            const auto a = rnnkit::parse_activation(act);
            py::gil_scoped_release release;
            rnnkit::dense_forward<S>(py_, px, pW, pb, N, I, O, a);
        });
    });
    m.def("dense_backward", [](py::object dx, py::array dW, py::object db, py::array dy, py::array y, py::array x,
                               py::array W, int N, int I, int O, const std::string& act) {
        dispatch(dy, [&](auto s) {
            using S = decltype(s);
            S* pdx = optional_data<S>(dx, "dx", std::size_t(N) * I);
            S* pdW = data<S>(dW, "dweight", std::size_t(O) * I);
            S* pdb = optional_data<S>(db, "dbias", std::size_t(O));
            S* pdy = data<S>(dy, "dy", std::size_t(N) * O);
            S* py_ = data<S>(y, "y", std::size_t(N) * O);
            S* px = data<S>(x, "x", std::size_t(N) * I);
            S* pW = data<S>(W, "weight", std::size_t(O) * I);
            const auto a = rnnkit::parse_activation(act);
            py::gil_scoped_release release;
            rnnkit::dense_backward<S>(pdx, pdW, pdb, pdy, py_, px, pW, N, I, O, a);
        });
    });
    m.def("embedding_forward", [](py::array y, py::array tokens, py::array table, int N, int V, int D) {
        std::int64_t* tk = data<std::int64_t>(tokens, "tokens", std::size_t(N));
        dispatch(y, [&](auto s) {
            using S = decltype(s);
            S* py_ = data<S>(y, "y", std::size_t(N) * D);
            S* pt = data<S>(table, "weight", std::size_t(V) * D);
            py::gil_scoped_release release;
            rnnkit::embedding_forward<S>(py_, tk, pt, N, V, D);
        });
    });
    m.def("embedding_backward", [](py::array dtable, py::array dy, py::array tokens, int N, int V, int D) {
        std::int64_t* tk = data<std::int64_t>(tokens, "tokens", std::size_t(N));
        dispatch(dy, [&](auto s) {
            using S = decltype(s);
            S* pdt = data<S>(dtable, "dweight", std::size_t(V) * D);
            S* pdy = data<S>(dy, "dy", std::size_t(N) * D);
            py::gil_scoped_release release;
            rnnkit::embedding_backward<S>(pdt, pdy, tk, N, V, D);
        });
    });
    m.def("dropout_forward", [](py::array y, py::array mask, py::array x, double p, std::uint64_t seed,
                                std::uint64_t counter) {
        dispatch(x, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(x.size());
            S* py_ = data<S>(y, "y", n);
            S* pm = data<S>(mask, "mask", n);
            S* px = data<S>(x, "x", n);
            py::gil_scoped_release release;
            rnnkit::dropout_forward<S>(py_, pm, px, n, p, seed, counter);
        });
    });
    m.def("last_step_forward", [](py::array y, py::array x, py::object lengths, int T, int B, int F, int D) {
        int* pl = optional_data<int>(lengths, "lengths", std::size_t(B));
        dispatch(x, [&](auto s) {
            using S = decltype(s);
            S* py_ = data<S>(y, "y", std::size_t(B) * F);
            S* px = data<S>(x, "x", std::size_t(T) * B * F);
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            rnnkit::last_step_forward<S>(py_, px, pl, T, B, F, D);
        });
    });
    m.def("last_step_backward", [](py::array dx, py::array dy, py::object lengths, int T, int B, int F, int D) {
        int* pl = optional_data<int>(lengths, "lengths", std::size_t(B));
        dispatch(dy, [&](auto s) {
            using S = decltype(s);
            S* pdx = data<S>(dx, "dx", std::size_t(T) * B * F);
            S* pdy = data<S>(dy, "dy", std::size_t(B) * F);
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            rnnkit::last_step_backward<S>(pdx, pdy, pl, T, B, F, D);
        });
    });

    // Losses: value (float) and the gradient written into the first array.
    m.def("mse_loss", [](py::array dpred, py::array pred, py::array target, py::object mask, int N, int C) {
        std::uint8_t* pm = optional_data<std::uint8_t>(mask, "mask", std::size_t(N));
        return dispatch(pred, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(N) * C;
            S *d = data<S>(dpred, "dpred", n), *p = data<S>(pred, "pred", n), *t = data<S>(target, "target", n);
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            return rnnkit::mse_loss<S>(d, p, t, pm, N, C);
        });
    });
    m.def("cross_entropy_loss", [](py::array dlogits, py::array logits, py::array target, py::object mask, int N,
                                   int C) {
        std::uint8_t* pm = optional_data<std::uint8_t>(mask, "mask", std::size_t(N));
        std::int64_t* pt = data<std::int64_t>(target, "target", std::size_t(N));
        return dispatch(logits, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(N) * C;
            S *d = data<S>(dlogits, "dlogits", n), *z = data<S>(logits, "logits", n);
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            return rnnkit::cross_entropy_loss<S>(d, z, pt, pm, N, C);
        });
    });
    m.def("bce_with_logits_loss", [](py::array dlogits, py::array logits, py::array target, py::object mask, int N,
                                     int C) {
        std::uint8_t* pm = optional_data<std::uint8_t>(mask, "mask", std::size_t(N));
        return dispatch(logits, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(N) * C;
            S *d = data<S>(dlogits, "dlogits", n), *z = data<S>(logits, "logits", n), *t = data<S>(target, "target", n);
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            return rnnkit::bce_with_logits_loss<S>(d, z, t, pm, N, C);
        });
    });

    // Optimizer updates, in place on the parameter array.
    m.def("sgd_update", [](py::array p, py::array g, py::object buf, double lr, double momentum, double dampening,
                           double weight_decay, bool nesterov, bool first_step) {
        dispatch(p, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(p.size());
            S *pp = data<S>(p, "param", n), *pg = data<S>(g, "grad", n), *pb = optional_data<S>(buf, "momentum_buffer", n);
            if (momentum != 0 && !pb) throw py::value_error("momentum_buffer: required when momentum != 0");
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            rnnkit::sgd_update<S>(pp, pg, pb, n, lr, momentum, dampening, weight_decay, nesterov, first_step);
        });
    });
    m.def("adam_update", [](py::array p, py::array g, py::array m1, py::array v, double lr, double beta1, double beta2,
                            double eps, double weight_decay, bool decoupled, long step) {
        dispatch(p, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(p.size());
            S *pp = data<S>(p, "param", n), *pg = data<S>(g, "grad", n);
            S *pm = data<S>(m1, "exp_avg", n), *pv = data<S>(v, "exp_avg_sq", n);
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            rnnkit::adam_update<S>(pp, pg, pm, pv, n, lr, beta1, beta2, eps, weight_decay, decoupled, step);
        });
    });
    m.def("rmsprop_update", [](py::array p, py::array g, py::array v, py::object grad_avg, py::object buf, double lr,
                               double alpha, double eps, double weight_decay, double momentum, bool centered) {
        dispatch(p, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(p.size());
            S *pp = data<S>(p, "param", n), *pg = data<S>(g, "grad", n), *pv = data<S>(v, "square_avg", n);
            S* pa = optional_data<S>(grad_avg, "grad_avg", n);
            S* pb = optional_data<S>(buf, "momentum_buffer", n);
            if (centered && !pa) throw py::value_error("grad_avg: required when centered");
            if (momentum > 0 && !pb) throw py::value_error("momentum_buffer: required when momentum > 0");
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            rnnkit::rmsprop_update<S>(pp, pg, pv, pa, pb, n, lr, alpha, eps, weight_decay, momentum, centered);
        });
    });
    m.def("adagrad_update", [](py::array p, py::array g, py::array sum, double lr, double lr_decay,
                               double weight_decay, double eps, long step) {
        dispatch(p, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(p.size());
            S *pp = data<S>(p, "param", n), *pg = data<S>(g, "grad", n), *ps = data<S>(sum, "sum", n);
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            rnnkit::adagrad_update<S>(pp, pg, ps, n, lr, lr_decay, weight_decay, eps, step);
        });
    });
    m.def("sum_of_squares", [](py::array g) {
        return dispatch(g, [&](auto s) {
            using S = decltype(s);
            S* pg = data<S>(g, "grad", std::size_t(g.size()));
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            return rnnkit::sum_of_squares<S>(pg, std::size_t(g.size()));
        });
    });
    m.def("scale", [](py::array g, double factor) {
        dispatch(g, [&](auto s) {
            using S = decltype(s);
            S* pg = data<S>(g, "grad", std::size_t(g.size()));
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            rnnkit::scale<S>(pg, std::size_t(g.size()), factor);
        });
    });
    m.def("clip_values", [](py::array g, double limit) {
        dispatch(g, [&](auto s) {
            using S = decltype(s);
            S* pg = data<S>(g, "grad", std::size_t(g.size()));
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            rnnkit::clip_values<S>(pg, std::size_t(g.size()), limit);
        });
    });
    m.def("add_l1_l2", [](py::array g, py::array p, double l1, double l2) {
        return dispatch(p, [&](auto s) {
            using S = decltype(s);
            const std::size_t n = std::size_t(p.size());
            S *pg = data<S>(g, "grad", n), *pp = data<S>(p, "param", n);
            py::gil_scoped_release release;  // the arrays stay alive: their handles are held
            return rnnkit::add_l1_l2<S>(pg, pp, n, l1, l2);
        });
    });
}
