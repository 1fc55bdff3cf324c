#include "cnnrt/gradcheck.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/safetensors.hpp"
#include "cnnrt/trainer.hpp"
#include "host/cpu_backend.hpp"
#include "host/executor.hpp"
#include "host/finite_difference.hpp"

namespace cnnrt {

namespace {

struct Batch {
  std::vector<float> images;  // [n, C, H, W]
  std::vector<std::int32_t> labels;
  std::string source;
};

Batch make_batch(const Network& network, const GradcheckOptions& o) {
  const SampleShape in = network.input();
  const std::size_t sample = static_cast<std::size_t>(in.size());
  Batch batch;
  if (!o.data_dir.empty()) {
    const Dataset test = load_mnist_split(o.data_dir, false);
    if (test.channels == in.c && test.height == in.h && test.width == in.w &&
        test.count >= o.batch && test.classes <= network.classes()) {
      batch.images = normalized_samples(test, 0, o.batch);
      batch.labels.assign(test.labels.begin(), test.labels.begin() + o.batch);
      batch.source = fmt::format("the first {} test images of {}", o.batch, o.data_dir);
      return batch;
    }
    batch.source = fmt::format("seeded random inputs ({} does not fit the input {})", o.data_dir,
                               in.to_string());
  } else {
    batch.source = "seeded random inputs";
  }
  std::mt19937_64 rng(o.seed + 17);
  std::normal_distribution<float> pixel(0.0f, 1.0f);
  std::uniform_int_distribution<int> label(0, network.classes() - 1);
  batch.images.resize(std::size_t(o.batch) * sample);
  for (float& v : batch.images) v = pixel(rng);
  batch.labels.resize(static_cast<std::size_t>(o.batch));
  for (auto& l : batch.labels) l = label(rng);
  return batch;
}

void finish(TensorCheck& check, bool within, bool nonzero) {
  check.passed = within && nonzero;
}

void dump(const std::string& path, const Network& network, const Batch& batch,
          const std::vector<ParameterInfo>& params, const std::vector<float>& values,
          const std::vector<float>& grads, double loss, int n) {
  SafeTensors file;
  const SampleShape in = network.input();
  file.add_f32("input", {n, in.c, in.h, in.w}, batch.images.data());
  std::vector<std::int64_t> labels(batch.labels.begin(), batch.labels.end());
  file.add_i64("labels", {n}, labels.data());
  for (const ParameterInfo& p : params) {
    file.add_f32(p.name, p.shape, values.data() + p.offset);
    file.add_f32(p.name + ".grad", p.shape, grads.data() + p.offset);
  }
  const float loss_value = static_cast<float>(loss);
  file.add_f32("loss", {}, &loss_value);
  file.metadata["model"] = network_to_json(network);
  file.save(path);
}

// All parameters (or their gradients) in one vector, each at its ParameterInfo offset.
template <typename Get>
std::vector<float> flatten(const Model& model, Get get) {
  std::vector<float> all(static_cast<std::size_t>(model.parameter_count()));
  for (const ParameterInfo& p : model.parameters()) {
    const std::vector<float> values = get(p.name);
    std::copy(values.begin(), values.end(), all.begin() + p.offset);
  }
  return all;
}

std::vector<float> flat_parameters(const Model& model) {
  return flatten(model, [&](const std::string& name) { return model.parameter(name); });
}

std::vector<float> flat_gradients(const Model& model) {
  return flatten(model, [&](const std::string& name) { return model.gradient(name); });
}

GradcheckReport cuda_against_cpu(const Network& network, const GradcheckOptions& o,
                                 Model& cpu_model, const Batch& batch) {
  CompileOptions cuda_options = cpu_model.options();
  cuda_options.device = Device::cuda;
  Model cuda_model(network, cuda_options);
  for (const ParameterInfo& p : cpu_model.parameters())
    cuda_model.set_parameter(p.name, cpu_model.parameter(p.name));
  const BatchStats cpu_stats =
      cpu_model.forward_backward(batch.images.data(), batch.labels.data(), o.batch);
  const BatchStats gpu_stats =
      cuda_model.forward_backward(batch.images.data(), batch.labels.data(), o.batch);

  GradcheckReport report;
  report.reference = "cuda vs cpu";
  report.loss = gpu_stats.mean_loss();
  report.passed = std::fabs(gpu_stats.mean_loss() - cpu_stats.mean_loss()) <=
                  kGpuAtolFraction + kGpuRtol * std::fabs(cpu_stats.mean_loss());
  for (const ParameterInfo& p : cpu_model.parameters()) {
    const std::vector<float> ref = cpu_model.gradient(p.name);
    const std::vector<float> got = cuda_model.gradient(p.name);
    TensorCheck check;
    check.name = p.name;
    for (float v : ref)
      check.max_abs_reference = std::max(check.max_abs_reference, double(std::fabs(v)));
    bool within = true;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      const double err = std::fabs(double(got[i]) - double(ref[i]));
      check.max_abs_error = std::max(check.max_abs_error, err);
      if (ref[i] != 0.0f)
        check.max_rel_error = std::max(check.max_rel_error, err / std::fabs(ref[i]));
      if (!(err <= kGpuAtolFraction * check.max_abs_reference + kGpuRtol * std::fabs(ref[i])))
        within = false;
      ++check.compared;
    }
    finish(check, within, check.max_abs_reference > 0);
    report.passed = report.passed && check.passed;
    report.tensors.push_back(check);
  }
  if (!o.dump_path.empty())
    dump(o.dump_path, network, batch, cuda_model.parameters(), flat_parameters(cuda_model),
         flat_gradients(cuda_model), gpu_stats.mean_loss(), o.batch);
  return report;
}

GradcheckReport cpu_against_finite_differences(const Network& network, const GradcheckOptions& o,
                                               const Model& cpu_model, const Batch& batch) {
  Executor<double> exec(network, o.batch, make_cpu_backend<double>(1, false));
  const std::vector<float> start = flat_parameters(cpu_model);
  exec.upload(exec.params(), std::vector<double>(start.begin(), start.end()));
  const std::vector<double> images(batch.images.begin(), batch.images.end());
  exec.load_batch(images.data(), batch.labels.data(), o.batch);
  const int n = o.batch;
  auto mean_loss = [&]() {
    exec.reset_counters();
    exec.forward(n, true);
    exec.loss(n, false);
    return exec.read_counters(n).mean_loss();
  };
  exec.reset_counters();
  exec.forward(n, true);
  exec.loss(n, true);
  exec.backward(n);
  const double loss0 = exec.read_counters(n).mean_loss();
  const std::vector<double> analytic =
      exec.download(exec.grads(), static_cast<std::size_t>(exec.parameter_count()));

  GradcheckReport report;
  report.reference = "cpu (double) vs finite differences";
  report.loss = loss0;
  report.passed = true;
  std::mt19937_64 rng(o.seed + 29);
  for (const ParameterInfo& p : exec.parameters()) {
    const auto first = std::size_t(p.offset), last = first + std::size_t(p.count);
    const std::vector<double> x(start.begin() + first, start.begin() + last);
    const std::vector<double> grad(analytic.begin() + first, analytic.begin() + last);
    std::vector<std::size_t> points(x.size());
    std::iota(points.begin(), points.end(), std::size_t(0));
    std::shuffle(points.begin(), points.end(), rng);
    points.resize(std::min(points.size(), std::size_t(o.fd_points_per_tensor)));
    const FdResult r = fd_check_gradient(
        x, grad,
        [&](std::size_t local, double v) {
          double* slot = exec.params() + first + local;
          exec.backend().copy_to_backend(slot, &v, sizeof(double));
          const double l = mean_loss();
          exec.backend().copy_to_backend(slot, &x[local], sizeof(double));
          return l;
        },
        points);
    TensorCheck check;
    check.name = p.name;
    check.compared = std::int64_t(r.checked);
    check.skipped = std::int64_t(r.skipped);
    check.max_abs_error = r.max_abs_error;
    check.max_rel_error = r.max_rel_error;
    check.max_abs_reference = r.max_abs_analytic;
    check.passed = r.passed;
    report.passed = report.passed && check.passed;
    report.tensors.push_back(check);
  }
  if (!o.dump_path.empty()) {
    const std::vector<float> grads(analytic.begin(), analytic.end());
    dump(o.dump_path, network, batch, exec.parameters(), start, grads, loss0, n);
  }
  return report;
}

}  // namespace

GradcheckReport gradcheck(const Network& network, const GradcheckOptions& o) {
  if (o.batch <= 0) throw Error(fmt::format("gradcheck: batch must be positive, got {}", o.batch));
  CompileOptions cpu_options;
  cpu_options.device = Device::reference;
  cpu_options.batch_size = o.batch;
  cpu_options.seed = o.seed;
  Model cpu_model(network, cpu_options);
  if (!o.weights_path.empty()) load_checkpoint(o.weights_path, cpu_model, false);
  const Batch batch = make_batch(network, o);
  GradcheckReport report = o.reference == GradcheckOptions::Reference::cpu
                               ? cuda_against_cpu(network, o, cpu_model, batch)
                               : cpu_against_finite_differences(network, o, cpu_model, batch);
  report.batch_source = batch.source;
  return report;
}

}  // namespace cnnrt
