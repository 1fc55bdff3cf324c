// The `cnnrt._cnnrt` extension module: the public C++ API (include/cnnrt/) for Python, with NumPy
// arrays in and out. Every computation is the library's; this file only converts arrays, checks
// their shapes and maps errors. python/cnnrt/__init__.py re-exports it.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/cifar.hpp"
#include "cnnrt/dataset.hpp"
#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/image_folder.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/onnx.hpp"
#include "cnnrt/recipe.hpp"
#include "cnnrt/trainer.hpp"
#include "cnnrt/version.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace cnnrt::python {

namespace {

// Any NumPy array, any dtype, layout and device: checked here so that a wrong one is a ValueError
// naming what was expected, not nanobind's generic TypeError about overloads.
using AnyArray = nb::ndarray<nb::ro, nb::numpy>;
template <typename T>
using OutArray = nb::ndarray<nb::numpy, T>;

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]) + (shape.size() == 1 ? "," : "");
  return s + ")";
}

std::vector<std::int64_t> shape_of(const AnyArray& a) {
  std::vector<std::int64_t> shape(a.ndim());
  for (std::size_t i = 0; i < a.ndim(); ++i) shape[i] = std::int64_t(a.shape(i));
  return shape;
}

std::string dtype_name(nb::dlpack::dtype t) {
  switch (nb::dlpack::dtype_code(t.code)) {
    case nb::dlpack::dtype_code::Int:
      return "int" + std::to_string(t.bits);
    case nb::dlpack::dtype_code::UInt:
      return "uint" + std::to_string(t.bits);
    case nb::dlpack::dtype_code::Float:
      return "float" + std::to_string(t.bits);
    case nb::dlpack::dtype_code::Bool:
      return "bool";
    default:
      return "an unsupported dtype";
  }
}

std::string describe(const AnyArray& a) {
  return dtype_name(a.dtype()) + " " + shape_text(shape_of(a));
}

template <typename T>
bool has_dtype(const AnyArray& a) {
  return a.dtype() == nb::dtype<T>();
}

// The array's elements in C order, as T. A C-contiguous array is read in place; any other layout
// (a transposed view, a slice with a step) is copied element by element through its strides.
template <typename T>
std::vector<T> elements(const AnyArray& a) {
  if (a.device_type() != nb::device::cpu::value)
    throw nb::value_error("expected an array in host memory (a NumPy array), got one on a device");
  const std::size_t n = a.size();
  std::vector<T> out(n);
  if (n == 0) return out;
  const T* base = static_cast<const T*>(a.data());
  bool contiguous = true;
  std::int64_t expected = 1;
  for (std::size_t d = a.ndim(); d-- > 0;) {
    if (a.shape(d) != 1 && a.stride(d) != expected) contiguous = false;
    expected *= std::int64_t(a.shape(d));
  }
  if (contiguous) {
    std::memcpy(out.data(), base, n * sizeof(T));
    return out;
  }
  std::vector<std::size_t> index(a.ndim(), 0);
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t offset = 0;
    for (std::size_t d = 0; d < a.ndim(); ++d) offset += std::int64_t(index[d]) * a.stride(d);
    out[i] = base[offset];
    for (std::size_t d = a.ndim(); d-- > 0;) {
      if (++index[d] < a.shape(d)) break;
      index[d] = 0;
    }
  }
  return out;
}

// A fresh NumPy array owning `values`, of `shape`.
template <typename T>
OutArray<T> to_numpy(std::vector<T> values, const std::vector<std::int64_t>& shape) {
  auto* owner = new std::vector<T>(std::move(values));
  nb::capsule deleter(owner, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  std::vector<std::size_t> dims(shape.begin(), shape.end());
  return OutArray<T>(owner->data(), dims.size(), dims.data(), deleter);
}

// Integer class labels of any integer dtype, one per sample, as the int32 the library takes.
std::vector<std::int32_t> labels_from(const AnyArray& labels, std::int64_t count) {
  const nb::dlpack::dtype t = labels.dtype();
  const auto code = nb::dlpack::dtype_code(t.code);
  if ((code != nb::dlpack::dtype_code::Int && code != nb::dlpack::dtype_code::UInt) ||
      labels.ndim() != 1 || std::int64_t(labels.shape(0)) != count)
    throw nb::value_error(("labels: expected an integer array of shape (" + std::to_string(count) +
                           ",), got " + describe(labels))
                              .c_str());
  std::vector<std::int32_t> out;
  auto convert = [&](auto values) {
    out.reserve(values.size());
    for (auto v : values) {
      if (v < 0 || std::int64_t(v) > INT32_MAX)
        throw nb::value_error(
            ("labels: " + std::to_string(std::int64_t(v)) + " is not a class index").c_str());
      out.push_back(std::int32_t(v));
    }
  };
  if (has_dtype<std::int32_t>(labels))
    convert(elements<std::int32_t>(labels));
  else if (has_dtype<std::int64_t>(labels))
    convert(elements<std::int64_t>(labels));
  else if (has_dtype<std::uint8_t>(labels))
    convert(elements<std::uint8_t>(labels));
  else if (has_dtype<std::int16_t>(labels))
    convert(elements<std::int16_t>(labels));
  else if (has_dtype<std::uint16_t>(labels))
    convert(elements<std::uint16_t>(labels));
  else if (has_dtype<std::uint32_t>(labels))
    convert(elements<std::uint32_t>(labels));
  else if (has_dtype<std::uint64_t>(labels))
    convert(elements<std::uint64_t>(labels));
  else if (has_dtype<std::int8_t>(labels))
    convert(elements<std::int8_t>(labels));
  else
    throw nb::value_error(("labels: unsupported dtype " + describe(labels)).c_str());
  return out;
}

// uint8 images in height-width-channel order as the library's [count, C, H, W] bytes. Accepted
// shapes: (H, W, C) and (N, H, W, C); for one channel also (H, W) and (N, H, W). Returns the count,
// or -1 when the shape is none of these.
std::int64_t hwc_to_chw(const AnyArray& images, const SampleShape& in,
                        std::vector<std::uint8_t>* chw) {
  const std::vector<std::int64_t> s = shape_of(images);
  const std::int64_t c = in.c, h = in.h, w = in.w;
  std::int64_t count = -1;
  bool has_channel_axis = true;
  if (s.size() == 3 && s[0] == h && s[1] == w && s[2] == c)
    count = 1;
  else if (s.size() == 4 && s[1] == h && s[2] == w && s[3] == c)
    count = s[0];
  else if (c == 1 && s.size() == 2 && s[0] == h && s[1] == w)
    count = 1, has_channel_axis = false;
  else if (c == 1 && s.size() == 3 && s[1] == h && s[2] == w)
    count = s[0], has_channel_axis = false;
  if (count < 0) return -1;
  const std::vector<std::uint8_t> hwc = elements<std::uint8_t>(images);
  chw->resize(hwc.size());
  if (!has_channel_axis || c == 1) {
    *chw = hwc;
    return count;
  }
  const std::int64_t plane = h * w;
  for (std::int64_t i = 0; i < count; ++i)
    for (std::int64_t p = 0; p < plane; ++p)
      for (std::int64_t ch = 0; ch < c; ++ch)
        (*chw)[std::size_t((i * c + ch) * plane + p)] = hwc[std::size_t((i * plane + p) * c + ch)];
  return count;
}

std::string input_expectation(const Network& net) {
  const SampleShape in = net.input();
  const std::string chw =
      std::to_string(in.c) + ", " + std::to_string(in.h) + ", " + std::to_string(in.w);
  const std::string hwc =
      std::to_string(in.h) + ", " + std::to_string(in.w) + ", " + std::to_string(in.c);
  std::string s =
      "float32 (N, " + chw + ") (normalised) or uint8 images (N, " + hwc + ") / (" + hwc + ")";
  if (in.c == 1) s += " / (N, " + std::to_string(in.h) + ", " + std::to_string(in.w) + ")";
  return s;
}

// Model inputs as float32 [n, C, H, W]: float32 arrays of that shape as they are (copied when not
// C-contiguous), uint8 images converted to CHW and normalised with the model's normalisation
// (normalized_samples, the batch gather's kernel).
struct Batch {
  std::vector<float> values;
  int count = 0;
};

Batch model_input(const Model& model, const AnyArray& x) {
  const Network& net = model.network();
  const SampleShape in = net.input();
  Batch b;
  if (has_dtype<float>(x)) {
    if (x.ndim() != 4 || std::int64_t(x.shape(1)) != in.c || std::int64_t(x.shape(2)) != in.h ||
        std::int64_t(x.shape(3)) != in.w)
      throw nb::value_error(
          ("input: expected " + input_expectation(net) + ", got " + describe(x)).c_str());
    b.values = elements<float>(x);
    b.count = int(x.shape(0));
    return b;
  }
  Dataset images;
  std::int64_t count = -1;
  if (has_dtype<std::uint8_t>(x)) count = hwc_to_chw(x, in, &images.images);
  if (count < 0)
    throw nb::value_error(
        ("input: expected " + input_expectation(net) + ", got " + describe(x)).c_str());
  images.count = int(count);
  images.channels = in.c, images.height = in.h, images.width = in.w;
  images.classes = net.classes();
  images.labels.assign(std::size_t(count), 0);
  b.values = normalized_samples(images, 0, images.count, model.normalization());
  b.count = images.count;
  return b;
}

// Runs `step(first, n)` over a batch in slices of at most the compiled batch size.
template <typename Step>
void in_slices(const Model& model, int count, Step step) {
  const int batch = model.options().batch_size;
  for (int first = 0; first < count; first += batch) step(first, std::min(batch, count - first));
}

// train_step and forward_backward: one batch of NumPy input, the GIL released while it runs.
using HostBatchCall = BatchStats (Model::*)(const float*, const std::int32_t*, int);
auto one_batch(HostBatchCall call) {
  return [call](Model& m, const AnyArray& x, const AnyArray& labels) {
    Batch b = model_input(m, x);
    const std::vector<std::int32_t> l = labels_from(labels, b.count);
    nb::gil_scoped_release release;
    return (m.*call)(b.values.data(), l.data(), b.count);
  };
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> names_and_shapes(
    const std::vector<ParameterInfo>& tensors) {
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> out;
  for (const ParameterInfo& p : tensors) out.emplace_back(p.name, p.shape);
  return out;
}

// parameter, gradient, momentum: a copy of one tensor by parameter name, with its shape.
using TensorByName = std::vector<float> (Model::*)(const std::string&) const;
auto by_name(TensorByName get) {
  return [get](const Model& m, const std::string& name) {
    return to_numpy((m.*get)(name), m.parameter_info(name).shape);
  };
}

void add_stats(BatchStats& total, const BatchStats& s) {
  total.loss_sum += s.loss_sum;
  total.correct += s.correct;
  total.samples += s.samples;
}

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu;
  if (text == "cuda") return Device::cuda;
  if (text == "reference") return Device::reference;
  throw ValueError("device must be cpu, cuda or reference, got '" + text + "'");
}

// A Dataset from NumPy: uint8 images (N, H, W), (N, H, W, C) or with channels_first (N, C, H, W),
// and N integer labels below `classes`.
Dataset dataset_from_numpy(const AnyArray& images, const AnyArray& labels, int classes,
                           bool channels_first, std::vector<std::string> class_names) {
  const std::vector<std::int64_t> s = shape_of(images);
  if (!has_dtype<std::uint8_t>(images) || s.size() < 3 || s.size() > 4)
    throw nb::value_error(("images: expected uint8 (N, H, W), (N, H, W, C) or with "
                           "channels_first (N, C, H, W), got " +
                           describe(images))
                              .c_str());
  Dataset d;
  d.count = int(s[0]);
  if (s.size() == 3)
    d.channels = 1, d.height = int(s[1]), d.width = int(s[2]);
  else if (channels_first)
    d.channels = int(s[1]), d.height = int(s[2]), d.width = int(s[3]);
  else
    d.height = int(s[1]), d.width = int(s[2]), d.channels = int(s[3]);
  d.classes = classes;
  if (s.size() == 4 && !channels_first) {
    hwc_to_chw(images, SampleShape{d.channels, d.height, d.width}, &d.images);
  } else {
    d.images = elements<std::uint8_t>(images);
  }
  const std::vector<std::int32_t> l = labels_from(labels, d.count);
  d.labels.reserve(l.size());
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (l[i] >= classes)
      throw nb::value_error(("labels: label " + std::to_string(l[i]) + " of sample " +
                             std::to_string(i) + " is outside the " + std::to_string(classes) +
                             " classes")
                                .c_str());
    d.labels.push_back(std::uint8_t(l[i]));
  }
  if (classes > 256) throw nb::value_error("classes: at most 256 (labels are stored as bytes)");
  d.class_names = std::move(class_names);
  return d;
}

std::string stats_repr(const BatchStats& s) {
  std::ostringstream o;
  o << "BatchStats(samples=" << s.samples << ", correct=" << s.correct
    << ", mean_loss=" << s.mean_loss() << ", accuracy=" << s.accuracy() << ")";
  return o.str();
}

// What a Python callback or Ctrl-C left behind while the library ran without the GIL: the first
// Python error, re-raised once the library call has returned.
struct PendingError {
  std::optional<nb::python_error> error;
  std::atomic<bool> stop{false};

  // With the GIL held: runs `call`, keeping its Python error and asking the library to stop.
  template <typename Call>
  void guard(Call call) {
    if (error) return;
    try {
      call();
    } catch (nb::python_error& e) {
      error.emplace(std::move(e));
      stop.store(true);
    }
  }
  void check_signals() {
    guard([] {
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
    });
  }
  void rethrow() {
    if (error) {
      nb::python_error e = std::move(*error);
      error.reset();
      throw e;
    }
  }
};

OptimizerParams make_optimizer(const std::string& kind, float lr, float momentum,
                               float weight_decay, std::pair<float, float> betas, float eps,
                               bool decay_norm_bias) {
  OptimizerParams p;
  p.kind = parse_optimizer(kind);
  p.lr = lr, p.momentum = momentum, p.weight_decay = weight_decay;
  p.beta1 = betas.first, p.beta2 = betas.second, p.eps = eps;
  p.decay_norm_bias = decay_norm_bias;
  return p;
}

}  // namespace

}  // namespace cnnrt::python

using namespace cnnrt;
using namespace cnnrt::python;

NB_MODULE(_cnnrt, m) {
  m.doc() = "cnnrt: a CNN training runtime (C++/CUDA) for Python.";
  m.attr("__version__") = cnnrt::version();

  // cnnrt::Error -> cnnrt.Error (a RuntimeError); cnnrt::ValueError -> cnnrt.ValueError, which is
  // both a cnnrt.Error and a ValueError.
  static PyObject* error = PyErr_NewExceptionWithDoc(
      "cnnrt.Error", "An error reported by the cnnrt library; the message says what and where.",
      PyExc_RuntimeError, nullptr);
  nb::object bases = nb::make_tuple(nb::handle(error), nb::handle(PyExc_ValueError));
  static PyObject* value_error = PyErr_NewExceptionWithDoc(
      "cnnrt.ValueError", "A value the caller chose lies outside what it may be.", bases.ptr(),
      nullptr);
  m.attr("Error") = nb::handle(error);
  m.attr("ValueError") = nb::handle(value_error);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const cnnrt::ValueError& e) {
      PyErr_SetString(value_error, e.what());
    } catch (const cnnrt::Error& e) {
      PyErr_SetString(error, e.what());
    }
  });

  // --- Statistics and reports.
  nb::class_<BatchStats>(m, "BatchStats",
                         "Sums over the samples seen: loss, correct count, samples.")
      .def(nb::init<>())
      .def_rw("loss_sum", &BatchStats::loss_sum, "Sum of the per-sample cross-entropy losses.")
      .def_rw("correct", &BatchStats::correct, "Samples whose top class was the label.")
      .def_rw("samples", &BatchStats::samples, "Samples counted.")
      .def_prop_ro("mean_loss", &BatchStats::mean_loss, "loss_sum / samples (0 when empty).")
      .def_prop_ro("accuracy", &BatchStats::accuracy, "correct / samples (0 when empty).")
      .def("__repr__", &stats_repr);

  nb::class_<EpochReport>(m, "EpochReport", "What one epoch of train() did.")
      .def_ro("epoch", &EpochReport::epoch, "1-based epoch number.")
      .def_ro("train", &EpochReport::train, "Training statistics of the epoch.")
      .def_ro("test", &EpochReport::test, "Test-set statistics after the epoch.")
      .def_ro("seconds", &EpochReport::seconds, "Seconds of the training pass.")
      .def_ro("images_per_second", &EpochReport::images_per_second)
      .def_ro("wall_seconds", &EpochReport::wall_seconds, "Seconds since the process started.")
      .def_ro("lr", &EpochReport::lr, "Learning rate at the epoch's first step.")
      .def_ro("stopped", &EpochReport::stopped,
              "True when a stop request (Ctrl-C) ended the run inside this epoch.")
      .def_ro("steps_done", &EpochReport::steps_done)
      .def_ro("steps", &EpochReport::steps)
      .def("__repr__", [](const EpochReport& r) {
        std::ostringstream o;
        o << "EpochReport(epoch=" << r.epoch << ", train=" << stats_repr(r.train)
          << ", test=" << stats_repr(r.test) << ", lr=" << r.lr
          << (r.stopped ? ", stopped=True" : "") << ")";
        return o.str();
      });

  nb::class_<CheckpointState>(m, "CheckpointState", "What load_checkpoint() restored.")
      .def_ro("epochs_done", &CheckpointState::epochs_done, "Completed epochs.")
      .def_ro("step_counter", &CheckpointState::step_counter)
      .def_ro("optimizer_steps", &CheckpointState::optimizer_steps)
      .def_ro("optimizer", &CheckpointState::optimizer,
              "The optimizer whose state the file holds; empty for a weights-only file.")
      .def_ro("has_momentum", &CheckpointState::has_momentum,
              "Whether the optimizer's state was loaded.")
      .def_prop_ro(
          "steps_done_in_epoch", [](const CheckpointState& s) { return s.within_epoch.steps_done; },
          "Steps taken in epoch epochs_done + 1 (a run stopped inside an epoch).");

  // --- Networks.
  nb::class_<Network>(m, "Network",
                      "A network description: layers and hyper-parameters, no memory. Compile "
                      "it into a Model for a device and batch size. Builder methods return the "
                      "network, so calls chain: Network((1, 28, 28), 10).conv2d(6, 5).relu()...")
      .def(
          "__init__",
          [](Network* self, std::tuple<int, int, int> input, int classes, const std::string& name) {
            new (self)
                Network(SampleShape{std::get<0>(input), std::get<1>(input), std::get<2>(input)},
                        classes, name);
          },
          "input"_a, "classes"_a, "name"_a = "network",
          "input: the per-sample shape (C, H, W); classes: outputs of the last layer.")
      .def(
          "conv2d",
          [](Network& n, int filters, int kernel, int stride, const std::string& padding,
             const std::string& name) -> Network& {
            Padding p = Padding::valid();
            if (padding == "same")
              p = Padding::same();
            else if (padding != "valid") {
              char* end = nullptr;
              const long v = std::strtol(padding.c_str(), &end, 10);
              if (padding.empty() || *end != '\0' || v < 0)
                throw ValueError("padding must be 'valid', 'same' or a number, got '" + padding +
                                 "'");
              p = Padding::explicit_pad(int(v), int(v));
            }
            return n.conv2d(filters, kernel, stride, p, name);
          },
          "filters"_a, "kernel"_a, "stride"_a = 1, "padding"_a = "valid", "name"_a = "",
          nb::rv_policy::reference_internal,
          "Adds a square convolution; padding: 'valid', 'same' or a number of pixels.")
      .def("relu", &Network::relu, nb::rv_policy::reference_internal, "Adds a ReLU.")
      .def("leaky_relu", &Network::leaky_relu, "slope"_a = 0.1f, nb::rv_policy::reference_internal,
           "Adds a leaky ReLU.")
      .def("sigmoid", &Network::sigmoid, nb::rv_policy::reference_internal, "Adds a sigmoid.")
      .def("max_pool", &Network::max_pool, "window"_a, "stride"_a, "name"_a = "",
           nb::rv_policy::reference_internal, "Adds max pooling.")
      .def("avg_pool", &Network::avg_pool, "window"_a, "stride"_a, "name"_a = "",
           nb::rv_policy::reference_internal, "Adds average pooling.")
      .def("dense", &Network::dense, "units"_a, "name"_a = "", nb::rv_policy::reference_internal,
           "Adds a fully connected layer.")
      .def("dropout", &Network::dropout, "p"_a, "name"_a = "", nb::rv_policy::reference_internal,
           "Adds dropout with drop probability p (training only).")
      .def("batch_norm", &Network::batch_norm, "momentum"_a = 0.1f, "eps"_a = 1e-5f, "name"_a = "",
           nb::rv_policy::reference_internal, "Adds batch normalisation.")
      .def("global_avg_pool", &Network::global_avg_pool, "name"_a = "",
           nb::rv_policy::reference_internal, "Adds global average pooling.")
      .def(
          "add",
          [](Network& n, const std::string& type, const std::string& name,
             const std::map<std::string, std::string>& fields) -> Network& {
            return n.add(LayerSpec{type, name, fields});
          },
          "type"_a, "name"_a = "", "fields"_a = std::map<std::string, std::string>{},
          nb::rv_policy::reference_internal,
          "Adds any registered layer type with its model-file fields, each given as JSON text "
          "({'units': '10'}).")
      .def_prop_ro("name", &Network::name)
      .def_prop_ro("classes", &Network::classes)
      .def_prop_ro(
          "input",
          [](const Network& n) { return std::make_tuple(n.input().c, n.input().h, n.input().w); },
          "The per-sample input shape (C, H, W).")
      .def_prop_ro(
          "layers",
          [](const Network& n) {
            nb::list out;
            for (const LayerSpec& l : n.layers()) {
              nb::dict d;
              d["type"] = l.type;
              d["name"] = l.name;
              for (const auto& [k, v] : l.fields) d[k.c_str()] = v;
              out.append(d);
            }
            return out;
          },
          "Each layer as a dict: type, name and its other fields as JSON text.")
      .def(
          "infer_shapes",
          [](const Network& n) {
            std::vector<std::tuple<int, int, int>> out;
            for (const SampleShape& s : n.infer_shapes()) out.emplace_back(s.c, s.h, s.w);
            return out;
          },
          "Output shape (C, H, W) of every layer; raises cnnrt.Error naming the first layer whose "
          "input does not fit.")
      .def(
          "summary",
          [](const Network& n) {
            nb::list out;
            for (const LayerCost& c : layer_costs(n)) {
              nb::dict d;
              d["name"] = c.name;
              d["description"] = c.description;
              d["output"] = std::make_tuple(c.output.c, c.output.h, c.output.w);
              d["parameters"] = c.parameters;
              d["flops"] = c.flops;
              out.append(d);
            }
            return out;
          },
          "Per layer, what `cnnrt summary` shows: output shape, parameters, forward FLOPs.")
      .def(
          "to_json", [](const Network& n) { return network_to_json(n); },
          "The network as a model file (JSON text).")
      .def("__repr__", [](const Network& n) {
        return "Network('" + n.name() + "', " + std::to_string(n.layers().size()) + " layers)";
      });

  m.def("load_network", &load_network, "name_or_path"_a,
        "A shipped preset by name (see preset_names()) or a JSON model file by path.");
  m.def("network_from_json", &network_from_json, "json_text"_a, "origin"_a = "<string>",
        "A network from model-file JSON text; origin names it in error messages.");
  m.def("preset_names", &preset_names, "The names of the shipped presets.");

  // --- Data sets.
  nb::class_<Dataset>(m, "Dataset",
                      "A labelled image set held as uint8 bytes, [count, C, H, W], as the IDX, "
                      "CIFAR and image-folder loaders give it.")
      .def(
          "__init__",
          [](Dataset* self, const AnyArray& images, const AnyArray& labels, int classes,
             bool channels_first, std::vector<std::string> class_names) {
            new (self) Dataset(dataset_from_numpy(images, labels, classes, channels_first,
                                                  std::move(class_names)));
          },
          "images"_a, "labels"_a, "classes"_a = 10, "channels_first"_a = false,
          "class_names"_a = std::vector<std::string>{},
          "images: uint8 (N, H, W) or (N, H, W, C) (channels last, as image libraries give "
          "them), or (N, C, H, W) with channels_first=True; labels: N integers below classes. "
          "The bytes are copied.")
      .def_ro("count", &Dataset::count)
      .def_ro("channels", &Dataset::channels)
      .def_ro("height", &Dataset::height)
      .def_ro("width", &Dataset::width)
      .def_ro("classes", &Dataset::classes)
      .def_ro("class_names", &Dataset::class_names)
      .def_prop_ro(
          "images",
          [](const Dataset& d) {
            return to_numpy(
                std::vector<std::uint8_t>(d.image_data(), d.image_data() + d.image_data_size()),
                {d.count, d.channels, d.height, d.width});
          },
          nb::rv_policy::move, "A copy of the images, uint8 (N, C, H, W).")
      .def_prop_ro(
          "labels",
          [](const Dataset& d) {
            return to_numpy(std::vector<std::int64_t>(d.labels.begin(), d.labels.end()), {d.count});
          },
          nb::rv_policy::move, "A copy of the labels, int64 (N,).")
      .def("take", &Dataset::take, "limit"_a, "The first `limit` samples (all when more).")
      .def("__len__", [](const Dataset& d) { return d.count; })
      .def("__repr__", [](const Dataset& d) {
        return "Dataset(count=" + std::to_string(d.count) + ", shape=(" +
               std::to_string(d.channels) + ", " + std::to_string(d.height) + ", " +
               std::to_string(d.width) + "), classes=" + std::to_string(d.classes) + ")";
      });

  m.def("load_idx_dataset", &load_idx_dataset, "images_path"_a, "labels_path"_a, "classes"_a = 10,
        nb::call_guard<nb::gil_scoped_release>(),
        "An IDX images file and labels file (gzipped or plain), checked.");
  m.def("load_mnist_split", &load_mnist_split, "dir"_a, "train"_a, "classes"_a = 10,
        nb::call_guard<nb::gil_scoped_release>(),
        "The train or test (t10k) split of an MNIST-format directory.");
  m.def(
      "load_cifar_split",
      [](const std::string& dir, bool train, const std::string& labels) {
        const CifarLabels l = parse_cifar_labels(labels);
        nb::gil_scoped_release release;
        Dataset d = load_cifar_split(dir, train, l);
        if (d.class_names.empty()) d.class_names = cifar_class_names(dir, l, d.classes);
        return d;
      },
      "dir"_a, "train"_a, "labels"_a = "fine",
      "The train or test split of a CIFAR-10 or CIFAR-100 binary directory (labels: CIFAR-100's "
      "fine or coarse), with its class names when the directory has them.");
  m.def(
      "load_image_folder",
      [](const std::string& dir, std::tuple<int, int, int> input, double test_split,
         std::uint64_t seed, int threads, const std::string& cache) {
        ImageFolderOptions o;
        o.channels = std::get<0>(input), o.height = std::get<1>(input),
        o.width = std::get<2>(input);
        o.test_split = test_split, o.seed = seed, o.threads = threads, o.cache = cache;
        nb::gil_scoped_release release;
        ImageFolderData d = load_image_folder(dir, o, true, true);
        return std::make_pair(std::move(d.train), std::move(d.test));
      },
      "dir"_a, "input"_a, "test_split"_a = 0.0, "seed"_a = 1, "threads"_a = 0, "cache"_a = "",
      "(train, test) from DIR/train/<class>/* and DIR/test/<class>/*, or with test_split in "
      "(0, 1) from DIR/<class>/* split by a seeded draw; every image decoded and fitted to "
      "input (C, H, W). The decoded splits are kept for the next call in DIR/.cnnrt-cache/ (or "
      "under the folder `cache`; 'none': not kept) and decoded again when the files change.");
  m.def(
      "find_cifar_kind",
      [](const std::string& dir) {
        CifarKind kind{};
        return find_cifar_kind(dir, &kind);
      },
      "dir"_a, "Whether dir holds CIFAR-10 or CIFAR-100 binary files.");
  m.def("looks_like_image_folder", &looks_like_image_folder, "dir"_a,
        "Whether dir holds class folders (or train/ with class folders).");
  m.def(
      "write_idx_file",
      [](const std::string& path, const AnyArray& data) {
        if (!has_dtype<std::uint8_t>(data))
          throw nb::value_error(
              ("write_idx_file: expected a uint8 array, got " + describe(data)).c_str());
        std::vector<int> dims;
        for (std::int64_t d : shape_of(data)) dims.push_back(int(d));
        write_idx_file(path, dims, elements<std::uint8_t>(data));
      },
      "path"_a, "data"_a, "Writes a plain IDX file of uint8 values with the array's dimensions.");
  m.def(
      "compute_normalization",
      [](const Dataset& d) {
        const Normalization n = compute_normalization(d);
        return std::make_pair(n.mean, n.std);
      },
      "dataset"_a,
      "(mean, std) per channel of byte / 255 over the data set's images, as `cnnrt train` "
      "computes them for non-IDX data.");
  m.attr("IDX_DEFAULT_MEAN") = kIdxDefaultMean;
  m.attr("IDX_DEFAULT_STD") = kIdxDefaultStd;
  m.def("cuda_available", &cuda_available, "Whether the CUDA runtime sees a device.");
  m.def("cpu_fast_path", &cpu_fast_path, "What the fast CPU path runs on this processor.");
  m.def("default_data_dir", &default_data_dir,
        "$CNNRT_DATA_DIR, else Debian's Fashion-MNIST directory.");

  // --- Models.
  nb::class_<Model>(m, "Model",
                    "A Network compiled for a device and batch size, holding parameters, "
                    "gradients and optimizer state. Inputs are float32 (N, C, H, W) arrays, "
                    "already normalised, or uint8 images (N, H, W, C) / (H, W, C) (and for one "
                    "channel (N, H, W) / (H, W)) normalised with the model's normalisation. "
                    "Arrays that are not C-contiguous are copied; other dtypes or shapes raise "
                    "ValueError naming the expected shape. Calls with more samples than the "
                    "batch size run in slices of the batch size.")
      .def(
          "__init__",
          [](Model* self, const Network& net, const std::string& device, int batch_size,
             std::uint64_t seed, int threads, const std::string& init, const std::string& gemm,
             bool cuda_graphs, bool fuse_activations) {
            CompileOptions o;
            o.device = parse_device(device);
            o.batch_size = batch_size, o.seed = seed, o.cpu_threads = threads;
            o.init = parse_init_scheme(init);
            o.gemm = parse_gemm_backend(gemm);
            o.cuda_graphs = cuda_graphs, o.fuse_activations = fuse_activations;
            nb::gil_scoped_release release;
            new (self) Model(net, o);
          },
          "network"_a, "device"_a = "cpu", "batch_size"_a = 256, "seed"_a = 1, "threads"_a = 0,
          "init"_a = "lecun-uniform", "gemm"_a = "tiled", "cuda_graphs"_a = true,
          "fuse_activations"_a = true,
          "Compiles `network`. device: cpu (fast CPU path), cuda or reference (plain loops); "
          "seed: weights, dropout and shuffling; threads: CPU threads (0: all; results are "
          "bit-identical for one count); init: he-/xavier-/lecun-uniform/-normal; gemm: tiled, "
          "cublas or tf32 (CUDA dense layers). Raises cnnrt.Error when the shapes do not fit or "
          "there is no CUDA device.")
      .def_prop_ro("network", &Model::network, nb::rv_policy::reference_internal)
      .def_prop_ro("device",
                   [](const Model& m) { return std::string(to_string(m.options().device)); })
      .def_prop_ro("batch_size", [](const Model& m) { return m.options().batch_size; })
      .def_prop_ro("seed", [](const Model& m) { return m.options().seed; })
      .def_prop_ro("threads", [](const Model& m) { return m.options().cpu_threads; })
      .def_prop_ro("arena_bytes", &Model::arena_bytes, "Bytes of the model's one allocation.")
      .def_prop_ro("parameter_count", &Model::parameter_count)
      .def(
          "layer_shapes",
          [](const Model& m) {
            std::vector<std::tuple<int, int, int>> out;
            for (const SampleShape& s : m.layer_shapes()) out.emplace_back(s.c, s.h, s.w);
            return out;
          },
          "Output shape (C, H, W) of each layer.")
      .def(
          "logits",
          [](Model& m, const AnyArray& x) {
            Batch b = model_input(m, x);
            const int classes = m.network().classes();
            const std::size_t sample = std::size_t(m.network().input().size());
            std::vector<float> out;
            out.reserve(std::size_t(b.count) * classes);
            {
              nb::gil_scoped_release release;
              in_slices(m, b.count, [&](int first, int n) {
                const std::vector<float> z = m.logits(b.values.data() + first * sample, n);
                out.insert(out.end(), z.begin(), z.end());
              });
            }
            return to_numpy(std::move(out), {b.count, classes});
          },
          "x"_a, "The last layer's outputs, float32 (N, classes), dropout off.")
      .def(
          "predict",
          [](Model& m, const AnyArray& x) {
            Batch b = model_input(m, x);
            const std::size_t sample = std::size_t(m.network().input().size());
            std::vector<std::int64_t> out;
            out.reserve(std::size_t(b.count));
            {
              nb::gil_scoped_release release;
              in_slices(m, b.count, [&](int first, int n) {
                for (int c : m.predict(b.values.data() + first * sample, n)) out.push_back(c);
              });
            }
            return to_numpy(std::move(out), {b.count});
          },
          "x"_a, "The top class of each sample, int64 (N,).")
      .def("train_step", one_batch(&Model::train_step), "x"_a, "labels"_a,
           "Forward, softmax cross-entropy, backward and one optimizer step on one batch (at most "
           "batch_size samples). Returns its BatchStats.")
      .def("forward_backward", one_batch(&Model::forward_backward), "x"_a, "labels"_a,
           "Forward, loss and backward on one batch without an update; gradient() then reads the "
           "gradients.")
      .def(
          "evaluate",
          [](Model& m, const AnyArray& x, const AnyArray& labels) {
            Batch b = model_input(m, x);
            const std::vector<std::int32_t> l = labels_from(labels, b.count);
            const std::size_t sample = std::size_t(m.network().input().size());
            nb::gil_scoped_release release;
            BatchStats total;
            in_slices(m, b.count, [&](int first, int n) {
              add_stats(total,
                        m.evaluate_batch(b.values.data() + first * sample, l.data() + first, n));
            });
            return total;
          },
          "x"_a, "labels"_a, "Loss and correct count over all samples, dropout off.")
      .def(
          "evaluate",
          [](Model& m, const Dataset& data, const std::string& tta) {
            const TestTimeAugment t = parse_test_time_augment(tta);
            nb::gil_scoped_release release;
            m.upload_eval_set(data);
            return m.evaluate_resident(t);
          },
          "dataset"_a, "tta"_a = "none",
          "Evaluates a whole Dataset as `cnnrt eval` does (normalised with the model's "
          "normalisation); tta 'flip' averages each image with its mirror.")
      .def(
          "layer_output",
          [](Model& m, int layer, int n) {
            const std::vector<SampleShape> shapes = m.layer_shapes();
            std::vector<float> v = m.layer_output(layer, n);
            const SampleShape s = shapes[std::size_t(layer)];
            return to_numpy(std::move(v), {n, s.c, s.h, s.w});
          },
          "layer"_a, "n"_a,
          "The last forward pass's output of layer `layer` for its first n samples, (n, C, H, W).")
      .def(
          "export_onnx",
          [](const Model& m, const std::string& path, bool softmax) {
            nb::gil_scoped_release release;
            export_onnx(m, path, OnnxExportOptions{softmax});
          },
          "path"_a, "softmax"_a = false,
          "cnnrt.export_onnx(self, path, softmax): the inference graph as an ONNX file.")
      .def(
          "parameters", [](const Model& m) { return names_and_shapes(m.parameters()); },
          "(name, shape) of every parameter, PyTorch's names and shapes, in storage order.")
      .def(
          "state_tensors", [](const Model& m) { return names_and_shapes(m.state_tensors()); },
          "(name, shape) of every non-parameter state tensor (batch norm's running statistics).")
      .def("parameter", by_name(&Model::parameter), "name"_a,
           "A copy of parameter `name` ('conv1.weight'), float32 with PyTorch's shape.")
      .def("gradient", by_name(&Model::gradient), "name"_a,
           "The gradient of parameter `name` from the last training step.")
      .def("momentum", by_name(&Model::momentum), "name"_a,
           "SGD's momentum buffer (Adam's first moment) for parameter `name`.")
      .def("second_moment", by_name(&Model::second_moment), "name"_a,
           "Adam's second moment for parameter `name`; raises cnnrt.Error for an optimizer "
           "without one.")
      .def(
          "set_parameter",
          [](Model& m, const std::string& name, const AnyArray& values) {
            const std::vector<std::int64_t>& shape = m.parameter_info(name).shape;
            if (!has_dtype<float>(values) || shape_of(values) != shape)
              throw nb::value_error(
                  (name + ": expected float32 " + shape_text(shape) + ", got " + describe(values))
                      .c_str());
            m.set_parameter(name, elements<float>(values));
          },
          "name"_a, "values"_a,
          "Sets parameter `name` from a float32 array of its shape (copied; any layout).")
      .def(
          "state",
          [](const Model& m, const std::string& name) {
            for (const ParameterInfo& p : m.state_tensors())
              if (p.name == name) return to_numpy(m.state(name), p.shape);
            return to_numpy(m.state(name), {});  // the library names the unknown tensor
          },
          "name"_a, "A copy of state tensor `name` ('bn1.running_mean').")
      .def(
          "set_optimizer",
          [](Model& m, const std::string& kind, float lr, float momentum, float weight_decay,
             std::pair<float, float> betas, float eps, bool decay_norm_bias) {
            m.set_optimizer(
                make_optimizer(kind, lr, momentum, weight_decay, betas, eps, decay_norm_bias));
          },
          "kind"_a = "sgd", "lr"_a = 0.01f, "momentum"_a = 0.0f, "weight_decay"_a = 0.0f,
          "betas"_a = std::make_pair(0.9f, 0.999f), "eps"_a = 1e-8f, "decay_norm_bias"_a = true,
          "The optimizer of train_step (sgd, nesterov, adam, adamw). Another kind starts from zero "
          "state; the same kind keeps it.")
      .def_prop_ro(
          "optimizer",
          [](const Model& m) {
            const OptimizerParams& o = m.optimizer();
            nb::dict d;
            d["kind"] = std::string(to_string(o.kind));
            d["lr"] = o.lr, d["momentum"] = o.momentum, d["weight_decay"] = o.weight_decay;
            d["betas"] = std::make_pair(o.beta1, o.beta2), d["eps"] = o.eps;
            d["decay_norm_bias"] = o.decay_norm_bias;
            return d;
          },
          "The optimizer's settings as a dict.")
      .def_prop_rw("label_smoothing", &Model::label_smoothing, &Model::set_label_smoothing)
      .def_prop_rw(
          "normalization",
          [](const Model& m) {
            return std::make_pair(m.normalization().mean, m.normalization().std);
          },
          [](Model& m, std::pair<std::vector<float>, std::vector<float>> v) {
            Normalization n;
            n.mean = std::move(v.first), n.std = std::move(v.second);
            m.set_normalization(n);
          },
          "(mean, std) applied to uint8 images: x = (byte / 255 - mean[c]) / std[c], one value or "
          "one per channel. Checkpoints record it.")
      .def_prop_rw("class_names", &Model::class_names, &Model::set_class_names,
                   "Names of the output classes (empty: unnamed); checkpoints record them.")
      .def_prop_rw("step_counter", &Model::step_counter, &Model::set_step_counter)
      .def_prop_rw("optimizer_steps", &Model::optimizer_steps, &Model::set_optimizer_steps)
      .def("__repr__", [](const Model& m) {
        return "Model('" + m.network().name() + "', device='" + to_string(m.options().device) +
               "', batch_size=" + std::to_string(m.options().batch_size) + ")";
      });

  // --- Checkpoints.
  m.def(
      "save_checkpoint",
      [](const std::string& path, const Model& model, int epochs_done) {
        nb::gil_scoped_release release;
        save_checkpoint(path, model, epochs_done);
      },
      "path"_a, "model"_a, "epochs_done"_a = 0,
      "Writes a safetensors checkpoint (weights, optimizer state, normalisation, class names, "
      "the model description) via a temporary file renamed into place.");
  m.def(
      "save_weights",
      [](const std::string& path, const Model& model) {
        nb::gil_scoped_release release;
        save_weights(path, model);
      },
      "path"_a, "model"_a,
      "Writes the weights only (parameters and layer state such as batch norm's running "
      "statistics, PyTorch's names; no optimizer state), which PyTorch's "
      "load_state_dict(strict=True) accepts; via a temporary file renamed into place.");
  m.def(
      "export_onnx",
      [](const Model& model, const std::string& path, bool softmax) {
        nb::gil_scoped_release release;
        export_onnx(model, path, OnnxExportOptions{softmax});
      },
      "model"_a, "path"_a, "softmax"_a = false,
      "Writes the model's inference graph as ONNX (opset 17, input 'input' [N, C, H, W] already "
      "normalised, output 'logits', or 'probabilities' with softmax), with the normalisation and "
      "class names in its metadata; raises cnnrt.Error naming a layer ONNX cannot express, or "
      "when this build has no ONNX export (onnx_export_available()).");
  m.def("onnx_export_available", &onnx_export_available,
        "Whether this build of cnnrt can export ONNX (it was built with libonnx-dev).");
  m.def(
      "load_checkpoint",
      [](const std::string& path, Model& model, bool with_optimizer_state) {
        nb::gil_scoped_release release;
        return load_checkpoint(path, model, with_optimizer_state);
      },
      "path"_a, "model"_a, "with_optimizer_state"_a = true,
      "Loads a checkpoint into a compiled model, every tensor checked by name and shape; sets "
      "the model's normalisation and class names from the file.");

  // --- Training.
  m.def(
      "train",
      [](Model& model, const Dataset& train_set, const Dataset& test_set, std::optional<int> epochs,
         std::optional<float> lr, std::optional<float> momentum, std::optional<float> weight_decay,
         std::optional<std::string> optimizer, std::optional<std::pair<float, float>> betas,
         std::optional<float> eps, std::optional<std::string> schedule, std::optional<float> warmup,
         std::optional<float> label_smoothing, std::optional<std::string> augment,
         std::optional<std::pair<std::vector<float>, std::vector<float>>> normalization,
         std::optional<bool> no_decay_norm_bias, std::optional<std::string> recipe,
         const std::string& checkpoint, const std::string& resume, const std::string& metrics,
         const std::string& tensorboard, bool progress, bool quiet,
         std::optional<nb::callable> on_epoch, std::optional<nb::callable> on_step) {
        // Defaults as `cnnrt train` sets them, then the recipe, then what the caller gave.
        TrainOptions t;
        t.optimizer =
            OptimizerParams{0.02f * float(model.options().batch_size) / 64.0f, 0.9f, 0.0f};
        t.schedule = LrSchedule::parse("cosine");
        TrainRecipe given;
        given.lr = lr, given.momentum = momentum, given.weight_decay = weight_decay;
        given.optimizer = optimizer, given.eps = eps, given.schedule = schedule;
        given.warmup = warmup, given.label_smoothing = label_smoothing, given.augment = augment;
        given.no_decay_norm_bias = no_decay_norm_bias;
        given.epochs = epochs;  // unset: the recipe's, else 10
        if (betas) given.beta1 = betas->first, given.beta2 = betas->second;
        const TrainRecipe r = recipe ? load_recipe(*recipe).overridden_by(given) : given;
        r.apply(t);
        t.normalization = model.normalization();
        if (normalization)
          t.normalization.mean = normalization->first, t.normalization.std = normalization->second;
        t.checkpoint_path = checkpoint, t.resume_path = resume, t.metrics_path = metrics;
        t.tensorboard_dir = tensorboard;
        t.progress_bar = progress, t.quiet = quiet;
        PendingError pending;
        t.stop = &pending.stop;
        t.on_step = [&](int epoch, int step, int steps) {
          nb::gil_scoped_acquire acquire;
          pending.check_signals();
          if (on_step) pending.guard([&] { (*on_step)(epoch, step, steps); });
        };
        EpochReport last;
        {
          nb::gil_scoped_release release;
          last = train(model, train_set, test_set, t, [&](const EpochReport& report) {
            nb::gil_scoped_acquire acquire;
            if (on_epoch) pending.guard([&] { (*on_epoch)(report); });
          });
        }
        pending.rethrow();
        return last;
      },
      "model"_a, "train_set"_a, "test_set"_a, nb::kw_only(), "epochs"_a.none() = nb::none(),
      "lr"_a.none() = nb::none(), "momentum"_a.none() = nb::none(),
      "weight_decay"_a.none() = nb::none(), "optimizer"_a.none() = nb::none(),
      "betas"_a.none() = nb::none(), "eps"_a.none() = nb::none(), "schedule"_a.none() = nb::none(),
      "warmup"_a.none() = nb::none(), "label_smoothing"_a.none() = nb::none(),
      "augment"_a.none() = nb::none(), "normalization"_a.none() = nb::none(),
      "no_decay_norm_bias"_a.none() = nb::none(), "recipe"_a.none() = nb::none(),
      "checkpoint"_a = "", "resume"_a = "", "metrics"_a = "", "tensorboard"_a = "",
      "progress"_a = false, "quiet"_a = true, "on_epoch"_a.none() = nb::none(),
      "on_step"_a.none() = nb::none(),
      "Trains `model` on `train_set`, evaluating on `test_set` after each epoch (cnnrt::train, "
      "the loop `cnnrt train` runs), and returns the last EpochReport.\n\n"
      "Settings left as None take `cnnrt train`'s defaults (10 epochs, SGD with momentum 0.9, "
      "lr 0.02 * batch_size / 64, cosine schedule), under `recipe` (a preset name or model "
      "file whose \"recipe\" to apply) when given. The model's batch size stays as compiled. "
      "optimizer: sgd, nesterov, adam, adamw; schedule: constant, cosine, step:E:G, linear, "
      "onecycle[:PCT]; augment: e.g. 'crop:4,flip'; normalization: (mean, std) for the uint8 "
      "data (default: the model's, the IDX default until set or loaded). checkpoint: written "
      "after every epoch and when stopped; resume: a checkpoint to continue from; metrics: a "
      "CSV path; tensorboard: a directory for TensorBoard event files (per-epoch losses, "
      "accuracies, learning rate, images/s and the first convolution's kernels). progress: a live "
      "progress bar on stdout; quiet: no per-epoch lines. "
      "on_epoch(report) is called after each epoch, on_step(epoch, step, steps) after each "
      "step. The GIL is released while training; Ctrl-C (or an exception from a callback) stops "
      "after the step in flight (writing the checkpoint when one is set) and is then raised.");
}
