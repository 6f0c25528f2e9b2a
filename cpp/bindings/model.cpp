// rnnkit._core.Model: the C++ inference Model (rnnkit/model.hpp) from Python, so that tests and tools can
// load, save and run a model file exactly as an embedded C++ program does.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <shared_mutex>
#include <optional>

#include "rnnkit/rnnkit.hpp"

namespace py = pybind11;

namespace {

struct ModelHandle {
    rnnkit::Model model;
    std::shared_mutex mutex;  // predict, stream and save only read the model: they share it
};

}  // namespace

void bind_model(py::module_& m) {
    m.def("model_layer_classes", &rnnkit::Model::layer_classes,
          "The layer classes a C++ Model (and a model file) accepts: every registered layer kind.");
    py::class_<ModelHandle>(m, "Model")
        .def(py::init<>())
        .def_static("load",
                    [](const std::string& path) {
                        auto h = std::make_unique<ModelHandle>();
                        {
                            py::gil_scoped_release release;
                            h->model = rnnkit::Model::load(path);
                        }
                        return h;
                    },
                    py::arg("path"))
        .def("save",
             [](ModelHandle& h, const std::string& path) {
                 py::gil_scoped_release release;
                 std::shared_lock<std::shared_mutex> lock(h.mutex);
                 h.model.save(path);
             },
             py::arg("path"))
        .def("add_layer",
             [](ModelHandle& h, const std::string& class_name, const std::string& config_json) {
                 h.model.add_layer(class_name, config_json);
             },
             py::arg("class_name"), py::arg("config_json"))
        .def("config_json", [](const ModelHandle& h) { return h.model.config_json(); })
        .def("parameter_names", [](const ModelHandle& h) { return h.model.parameter_names(); })
        .def_property_readonly("metadata_json", [](const ModelHandle& h) { return h.model.metadata_json(); })
        .def_property_readonly("input_size", [](const ModelHandle& h) { return h.model.input_size(); })
        .def_property_readonly("output_size", [](const ModelHandle& h) { return h.model.output_size(); })
        .def_property_readonly("batch_first", [](const ModelHandle& h) { return h.model.batch_first(); })
        // x: (T, B, I) or (B, T, I) float32 (the model's convention); lengths: (B,) or None.
        .def("predict",
             [](ModelHandle& h, py::array_t<float, py::array::c_style | py::array::forcecast> x,
                std::optional<py::array_t<int, py::array::c_style | py::array::forcecast>> lengths) {
                 if (x.ndim() != 3) throw py::value_error("x: expected a 3-d array (T, B, I) or (B, T, I)");
                 const bool bf = h.model.batch_first();
                 const int T = int(x.shape(bf ? 1 : 0)), B = int(x.shape(bf ? 0 : 1));
                 if (x.shape(2) != h.model.input_size())
                     throw py::value_error("x: expected " + std::to_string(h.model.input_size()) + " features, got " +
                                           std::to_string(x.shape(2)));
                 if (lengths && (lengths->ndim() != 1 || lengths->shape(0) != B))
                     throw py::value_error("lengths: expected shape (" + std::to_string(B) + ",)");
                 const int O = h.model.output_size();
                 std::vector<py::ssize_t> shape;
                 if (h.model.sequence_output())
                     shape = bf ? std::vector<py::ssize_t>{B, T, O} : std::vector<py::ssize_t>{T, B, O};
                 else
                     shape = {B, O};
                 py::array_t<float> y(shape);
                 {
                     py::gil_scoped_release release;
                     std::shared_lock<std::shared_mutex> lock(h.mutex);
                     h.model.predict(x.data(), T, B, y.mutable_data(), lengths ? lengths->data() : nullptr);
                 }
                 return y;
             },
             py::arg("x"), py::arg("lengths") = py::none())
        // stream(x) -> (T, B, O): x (T, B, I) time-major fed one step at a time through new_state/step; row t is
        // the model's output after step t (what predict gives for the sequences cut there).
        .def("stream",
             [](ModelHandle& h, py::array_t<float, py::array::c_style | py::array::forcecast> x) {
                 if (x.ndim() != 3 || x.shape(2) != h.model.input_size())
                     throw py::value_error("x: expected a (T, B, " + std::to_string(h.model.input_size()) +
                                           ") array, time-major");
                 const int T = int(x.shape(0)), B = int(x.shape(1)), I = int(x.shape(2));
                 if (T < 1 || B < 1) throw py::value_error("x: expected at least one step and one stream");
                 const int O = h.model.output_size();
                 py::array_t<float> y({T, B, O});
                 {
                     py::gil_scoped_release release;
                     std::shared_lock<std::shared_mutex> lock(h.mutex);
                     auto state = h.model.new_state(B);
                     for (int t = 0; t < T; ++t)
                         h.model.step(x.data() + std::size_t(t) * B * I, state, y.mutable_data() + std::size_t(t) * B * O);
                 }
                 return y;
             },
             py::arg("x"));
}
