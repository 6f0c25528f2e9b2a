// The cell registry as Python sees it: rnnkit._core.cell_kinds() lists every registered cell kind with its
// traits and parameter layout, so the Python side asks rather than repeating them.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "rnnkit/rnnkit.hpp"

namespace py = pybind11;

namespace {

const char* dim_name(rnnkit::Dim d) {
    switch (d) {
        case rnnkit::Dim::Gates: return "gates*hidden_size";
        case rnnkit::Dim::Input: return "input_size";
        case rnnkit::Dim::Hidden: return "hidden_size";
        case rnnkit::Dim::Output: return "proj_size or hidden_size";
        case rnnkit::Dim::GateState: return "3*hidden_size";
        case rnnkit::Dim::HeadDim: return "hidden_size/num_heads";
        default: return "extra_rows";
    }
}

const char* presence_name(rnnkit::Presence p) {
    switch (p) {
        case rnnkit::Presence::WithBias: return "bias";
        case rnnkit::Presence::WithPeephole: return "peephole";
        case rnnkit::Presence::WithProjection: return "proj_size";
        case rnnkit::Presence::WithLayerNorm: return "layer_norm";
        case rnnkit::Presence::WithFullGateRecurrence: return "full_gate_recurrence";
        default: return "always";
    }
}

}  // namespace

void bind_registry(py::module_& m) {
    m.def("cell_kinds", [] {
        py::list out;
        for (const rnnkit::CellInfo* c : rnnkit::registered_cells()) {
            py::list params;
            for (const auto& p : c->params) {
                py::list shape;
                for (auto d : p.shape) shape.append(dim_name(d));
                params.append(py::dict(py::arg("name") = p.name, py::arg("shape") = py::tuple(shape),
                                       py::arg("present") = presence_name(p.presence)));
            }
            py::dict row;
            row["name"] = c->name;
            row["layer_class"] = c->layer_class;
            row["nonlinearity"] = c->nonlinearity ? py::object(py::str(c->nonlinearity)) : py::object(py::none());
            row["summary"] = c->summary;
            row["gates"] = c->gates;
            row["saved"] = c->saved;
            row["num_states"] = c->states;
            row["recurrence"] = c->recurrence;
            row["mid_step_product"] = c->mid_step_product;
            row["cross_unit_reduction"] = c->cross_unit_reduction;
            row["extra_rows"] = c->extra_rows;
            row["params"] = params;
            row["options"] = c->options;
            row["state_names"] = c->state_names;
            row["init"] = c->init;
            row["backends"] = c->backends;
            out.append(row);
        }
        return out;
    }, "Every registered cell kind: name, layer class, traits, parameter layout, options, initialisation.");
    m.def("backends", [] {
        py::list out;
        for (auto b : {rnnkit::Backend::Cpu, rnnkit::Backend::Reference, rnnkit::Backend::Cuda}) out.append(rnnkit::to_string(b));
        return out;
    }, "The backends rnnkit knows ('cuda' has no drivers in this build).");
}
