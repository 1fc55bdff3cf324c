#include "cnnrt/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>
#include <random>
#include <tuple>

#include "cnnrt/dataset.hpp"
#include "cnnrt/distributed.hpp"
#include "cnnrt/error.hpp"
#include "host/executor.hpp"
#include "host/image_cache.hpp"
#include "host/normalization.hpp"
#include "host/profiling.hpp"

namespace cnnrt {

const char* to_string(Device device) {
  switch (device) {
    case Device::cuda:
      return "cuda";
    case Device::reference:
      return "reference";
    case Device::cpu:
      break;
  }
  return "cpu";
}

InitScheme parse_init_scheme(const std::string& text) {
  static const std::pair<const char*, InitScheme> kSchemes[] = {
      {"he-uniform", InitScheme::he_uniform},         {"he-normal", InitScheme::he_normal},
      {"xavier-uniform", InitScheme::xavier_uniform}, {"xavier-normal", InitScheme::xavier_normal},
      {"lecun-uniform", InitScheme::lecun_uniform},   {"lecun-normal", InitScheme::lecun_normal}};
  for (const auto& [name, scheme] : kSchemes)
    if (text == name) return scheme;
  throw Error(
      fmt::format("unknown initialisation '{}' (he-uniform, he-normal, xavier-uniform, "
                  "xavier-normal, lecun-uniform, lecun-normal)",
                  text));
}

TestTimeAugment parse_test_time_augment(const std::string& text) {
  if (text == "none") return TestTimeAugment::none;
  if (text == "flip") return TestTimeAugment::flip;
  throw Error(fmt::format("unknown test-time augmentation '{}' (none, flip)", text));
}

GemmBackend parse_gemm_backend(const std::string& text) {
  for (const GemmBackend gemm : {GemmBackend::tiled, GemmBackend::cublas, GemmBackend::tf32})
    if (text == to_string(gemm)) return gemm;
  throw Error(fmt::format("unknown GEMM '{}' (tiled, cublas, tf32)", text));
}

const char* to_string(GemmBackend gemm) {
  switch (gemm) {
    case GemmBackend::cublas:
      return "cublas";
    case GemmBackend::tf32:
      return "tf32";
    case GemmBackend::tiled:
      break;
  }
  return "tiled";
}

ConvPrecision parse_conv_precision(const std::string& text) {
  for (const ConvPrecision p : {ConvPrecision::fp32, ConvPrecision::tf32})
    if (text == to_string(p)) return p;
  throw ValueError(fmt::format("unknown convolution precision '{}' (fp32, tf32)", text));
}

const char* to_string(ConvPrecision precision) {
  return precision == ConvPrecision::tf32 ? "tf32" : "fp32";
}

namespace {

// What this rank compiles: the largest share of the global batch, so that every rank's arena is
// the same, after checking that the ranks agree on what they compile.
CompileOptions options_of_rank(const Network& network, const CompileOptions& options) {
  Communicator* ranks = several_ranks(options.communicator);
  if (ranks == nullptr) return options;
  check_ranks_agree(*ranks,
                    {{"model (a hash of its description)", setting_hash(network_to_json(network))},
                     {"batch size", options.batch_size},
                     {"seed", std::int64_t(options.seed & 0x7FFFFFFFFFFFFFFFull)},
                     {"device (0 cpu, 1 cuda, 2 reference)", int(options.device)},
                     {"weight initialisation", int(options.init)}});
  if (options.batch_size < ranks->size())
    throw CollectiveError(
        fmt::format("a global batch of {} cannot be shared by {} ranks: use a batch of at least {}",
                    options.batch_size, ranks->size(), ranks->size()));
  CompileOptions local = options;
  // The last rank's slice is the largest: ceil(batch / ranks).
  local.batch_size = rank_slice(options.batch_size, ranks->size() - 1, ranks->size()).count();
  return local;
}

// Sums `stats` over the ranks (once per epoch or evaluation).
BatchStats sum_over_ranks(Communicator* ranks, BatchStats stats) {
  if (ranks == nullptr) return stats;
  std::int64_t counts[2] = {stats.correct, stats.samples};
  ranks->sum(&stats.loss_sum, 1);
  ranks->sum(counts, 2);
  stats.correct = counts[0], stats.samples = counts[1];
  return stats;
}

// A data set held in the backend's memory as bytes, with its sample order. On a CPU backend a
// memory-mapped set is not copied: its batches are gathered from the mapping (`mapped`).
struct ResidentSet {
  BackendMemory<float> images, labels, order;
  std::shared_ptr<const std::uint8_t> mapped;
  int count = 0;
  int pixels = 0;

  const std::uint8_t* image_bytes() const {
    return mapped ? mapped.get() : images.as<std::uint8_t>();
  }
  // Asks the kernel to start reading the pages of these samples of a mapped set (a step ahead
  // of the gather that reads them); nothing for a set in memory.
  void prefetch(const std::int32_t* samples, int n) const {
    if (mapped) prefetch_mapped_samples(mapped.get(), std::size_t(pixels), samples, n);
  }
  const std::uint8_t* label_bytes() const { return labels.as<std::uint8_t>(); }
  std::int32_t* sample_order() const { return order.as<std::int32_t>(); }

  void clear() noexcept {
    images.reset();
    mapped.reset();
    labels.reset();
    order.reset();
    count = 0;
  }
};

}  // namespace

struct Model::Impl {
  Network network;
  CompileOptions options;
  std::unique_ptr<Executor<float>> exec;
  OptimizerParams optimizer;
  Normalization normalization;  // what set_normalization was given (checkpoints record it)
  NormalizeParams norm;         // the same for the gather kernels
  std::vector<std::string> class_names;
  AugmentParams augment;  // training batches only
  // Each step's StepScalars for one epoch of the resident training set (the update reads entry
  // batch_step), filled by train_epoch before its first step; sized when the set is uploaded.
  BackendMemory<float> step_table;
  int step_table_entries = 0;
  ResidentSet train, eval;
  std::vector<std::int32_t> order;  // host copy of the shuffled training order
  bool used_graph = false;
  // What the captured step graph baked in; a change means capturing again.
  // (Uploading a training set drops it too: the graph holds the set's device pointers.)
  // The learning rate and Adam's bias corrections are not in it: the update reads them from
  // step_table, refilled every epoch.
  struct GraphKey {
    OptimizerKind kind;
    float momentum, weight_decay, beta1, beta2, eps;
    bool decay_norm_bias;
    float label_smoothing;
    std::vector<float> mean, std;
    int crop_padding;
    bool flip;
    auto tied() const {
      return std::tie(kind, momentum, weight_decay, beta1, beta2, eps, decay_norm_bias,
                      label_smoothing, mean, std, crop_padding, flip);
    }
    bool operator==(const GraphKey& o) const { return tied() == o.tied(); }
  };
  GraphKey current_graph_key() const {
    const OptimizerParams& o = optimizer;
    return GraphKey{o.kind,
                    o.momentum,
                    o.weight_decay,
                    o.beta1,
                    o.beta2,
                    o.eps,
                    o.decay_norm_bias,
                    exec->label_smoothing,
                    normalization.mean,
                    normalization.std,
                    augment.pad,
                    augment.flip};
  }
  std::optional<GraphKey> graph_key;
  std::unique_ptr<ProfilerCapture> profiler;

  Communicator* ranks = nullptr;  // more than one rank: options.communicator

  Impl(const Network& net, const CompileOptions& opts)
      : network(net),
        options(opts),
        exec(make_executor(network, options_of_rank(net, opts))),
        ranks(several_ranks(opts.communicator)) {
    const SampleShape in = network.input();
    augment.channels = in.c, augment.height = in.h, augment.width = in.w;
    augment.seed = options.seed;
    norm = to_normalize_params(normalization, in.c, in.h * in.w);
    if (ranks != nullptr) exec->reduce_gradients = gradient_sum(*ranks, exec->backend());
  }

  // The gradient sum over the ranks, in place. CPU memory is the host's; CUDA gradients go
  // through a host copy (MPI here is not CUDA-aware), which also keeps steps out of graphs.
  static std::function<void(float*, std::size_t)> gradient_sum(Communicator& ranks,
                                                               Backend<float>& backend) {
    if (backend.cpu() != nullptr)
      return [&ranks](float* grads, std::size_t count) { ranks.sum(grads, count); };
    auto staging = std::make_shared<std::vector<float>>();
    return [&ranks, &backend, staging](float* grads, std::size_t count) {
      staging->resize(count);
      backend.copy_to_host(staging->data(), grads, count * sizeof(float));
      ranks.sum(staging->data(), count);
      backend.copy_to_backend(grads, staging->data(), count * sizeof(float));
    };
  }

  // Batch norm's running statistics as rank 0 has them, on every rank.
  void share_state_of_rank0() {
    if (ranks == nullptr || exec->state_count() == 0) return;
    std::vector<float> state =
        exec->download(exec->state_values(), std::size_t(exec->state_count()));
    ranks->broadcast(state.data(), state.size() * sizeof(float), 0);
    exec->upload(exec->state_values(), state);
  }

  int rank() const { return ranks != nullptr ? ranks->rank() : 0; }
  int rank_count() const { return ranks != nullptr ? ranks->size() : 1; }

  void check_sample_shape(const Dataset& data, const char* what) const {
    const SampleShape in = network.input();
    if (data.channels != in.c || data.height != in.h || data.width != in.w)
      throw Error(fmt::format("{} set has {}x{}x{} samples but {} expects {}", what, data.channels,
                              data.height, data.width, network.name(), in.to_string()));
    if (data.count <= 0) throw Error(fmt::format("{} set is empty", what));
    if (data.image_data_size() != std::size_t(data.count) * std::size_t(in.size()) ||
        data.labels.size() != std::size_t(data.count))
      throw Error(fmt::format("{} set of {} samples holds {} image bytes and {} labels", what,
                              data.count, data.image_data_size(), data.labels.size()));
    // Checked here: on CUDA a label past the last class would only show up as a NaN loss.
    for (std::size_t i = 0; i < data.labels.size(); ++i)
      if (data.labels[i] >= network.classes())
        throw Error(fmt::format("{} set: label {} of sample {} is outside the {} classes of {}",
                                what, data.labels[i], i, network.classes(), network.name()));
  }

  void upload(ResidentSet& set, const Dataset& data, const char* what) {
    check_sample_shape(data, what);
    if (&set == &train) graph_key.reset();
    set.clear();
    Backend<float>& b = exec->backend();
    if (data.mapped_images && b.cpu() != nullptr) {
      set.mapped = data.mapped_images;
    } else {
      set.images = BackendMemory<float>(b, data.image_data_size());
      b.copy_to_backend(set.images.get(), data.image_data(), data.image_data_size());
    }
    set.labels = BackendMemory<float>(b, data.labels.size());
    set.order = BackendMemory<float>(b, sizeof(std::int32_t) * data.count);
    b.copy_to_backend(set.labels.get(), data.labels.data(), data.labels.size());
    std::vector<std::int32_t> identity(static_cast<std::size_t>(data.count));
    std::iota(identity.begin(), identity.end(), 0);
    b.copy_to_backend(set.order.get(), identity.data(), identity.size() * sizeof(std::int32_t));
    set.count = data.count;
    set.pixels = data.channels * data.height * data.width;
    if (ranks != nullptr)
      check_ranks_agree(*ranks, {{fmt::format("{} set's size", what), data.count},
                                 {fmt::format("{} set's sample size", what), set.pixels}});
    if (&set == &train) {
      step_table_entries = (data.count + options.batch_size - 1) / options.batch_size;
      step_table = BackendMemory<float>(b, sizeof(StepScalars) * std::size_t(step_table_entries));
    }
  }

  // This step's scalars: the rate `lr`, Adam's bias corrections for the next update.
  StepScalars next_step(float lr, std::uint64_t updates_before) const {
    return StepScalars::at(optimizer, lr, updates_before + 1);
  }

  BatchStats host_batch(const float* images, const std::int32_t* labels, int n, bool training,
                        bool update) {
    ScopedRange range(update ? "step" : training ? "forward_backward" : "evaluate");
    exec->load_batch(images, labels, n);
    exec->reset_counters();
    exec->forward(n, training);
    exec->loss(n, training);
    if (training) exec->backward(n);
    if (update) {
      exec->update(optimizer, next_step(optimizer.lr, exec->optimizer_steps));
      ++exec->optimizer_steps;
      ++exec->step_counter;
    }
    return exec->read_counters(n);
  }
};

Model::Model(const Network& network, const CompileOptions& options)
    : impl_(std::make_unique<Impl>(network, options)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const Network& Model::network() const {
  return impl_->network;
}
const CompileOptions& Model::options() const {
  return impl_->options;
}
std::size_t Model::arena_bytes() const {
  return impl_->exec->arena_bytes();
}

std::vector<SampleShape> Model::layer_shapes() const {
  std::vector<SampleShape> shapes;
  for (const LayerPlan& layer : impl_->exec->layers()) shapes.push_back(layer.out_shape);
  return shapes;
}

BatchStats Model::forward_backward(const float* images, const std::int32_t* labels, int n) {
  return impl_->host_batch(images, labels, n, true, false);
}

BatchStats Model::train_step(const float* images, const std::int32_t* labels, int n) {
  return impl_->host_batch(images, labels, n, true, true);
}

BatchStats Model::evaluate_batch(const float* images, const std::int32_t* labels, int n) {
  return impl_->host_batch(images, labels, n, false, false);
}

std::vector<float> Model::logits(const float* images, int n) {
  std::vector<std::int32_t> no_labels(static_cast<std::size_t>(std::max(n, 0)), 0);
  impl_->exec->load_batch(images, no_labels.data(), n);
  impl_->exec->forward(n, false);
  const int classes = impl_->network.classes();
  return impl_->exec->download(
      impl_->exec->output(static_cast<int>(impl_->exec->layers().size()) - 1),
      std::size_t(n) * classes);
}

std::vector<int> Model::predict(const float* images, int n) {
  const std::vector<float> scores = logits(images, n);
  const int classes = impl_->network.classes();
  std::vector<int> predicted(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const float* row = scores.data() + std::size_t(i) * classes;
    predicted[i] = static_cast<int>(std::max_element(row, row + classes) - row);
  }
  return predicted;
}

std::vector<float> Model::layer_output(int layer, int n) {
  Executor<float>& exec = *impl_->exec;
  const int layers = static_cast<int>(exec.layers().size());
  if (layer < 0 || layer >= layers)
    throw Error(fmt::format("layer_output: layer {} out of range ({} has layers 0..{})", layer,
                            impl_->network.name(), layers - 1));
  if (n <= 0 || n > exec.batch())
    throw Error(fmt::format("layer_output: n must be in 1..{}, got {}", exec.batch(), n));
  const SampleShape shape = exec.layers()[static_cast<std::size_t>(layer)].out_shape;
  return exec.download(exec.output(layer), std::size_t(n) * std::size_t(shape.size()));
}

void Model::set_normalization(const Normalization& normalization) {
  const SampleShape in = impl_->network.input();
  impl_->norm = to_normalize_params(normalization, in.c, in.h * in.w);
  impl_->normalization = normalization;
}

const Normalization& Model::normalization() const {
  return impl_->normalization;
}

void Model::set_class_names(const std::vector<std::string>& names) {
  if (!names.empty() && int(names.size()) != impl_->network.classes())
    throw Error(fmt::format("{} class names for {}, which has {} classes", names.size(),
                            impl_->network.name(), impl_->network.classes()));
  impl_->class_names = names;
}

const std::vector<std::string>& Model::class_names() const {
  return impl_->class_names;
}

void Model::set_augmentation(const Augmentation& augmentation) {
  AugmentParams a = impl_->augment;
  a.pad = augmentation.crop_padding;
  a.flip = augmentation.flip;
  check_augment("augmentation", a, int(impl_->network.input().size()));
  impl_->augment = a;
}

void Model::upload_train_set(const Dataset& data) {
  impl_->upload(impl_->train, data, "training");
}
void Model::upload_eval_set(const Dataset& data) {
  impl_->upload(impl_->eval, data, "evaluation");
}

BatchStats Model::train_epoch(int epoch, const Progress& progress) {
  return train_epoch(epoch, EpochControl{}, progress).stats;
}

Model::EpochPass Model::train_epoch(int epoch, const EpochControl& control,
                                    const Progress& progress) {
  Impl& m = *impl_;
  ResidentSet& set = m.train;
  if (set.count == 0) throw Error("train_epoch: no training set uploaded (upload_train_set)");
  Executor<float>& exec = *m.exec;
  Backend<float>& backend = exec.backend();
  const int batch = m.options.batch_size;  // the global batch: exec.batch() is this rank's share
  const int full_steps = set.count / batch;
  const int steps = (set.count + batch - 1) / batch;
  auto samples_after = [&](int step) {
    return std::min<std::int64_t>(std::int64_t(step) * batch, set.count);
  };
  // This rank's images in a full step and in the last, partial one.
  const RankSlice share = rank_slice(batch, m.rank(), m.rank_count());
  const RankSlice tail_share = rank_slice(set.count - full_steps * batch, m.rank(), m.rank_count());
  auto local_samples_after = [&](int step) {
    return std::int64_t(std::min(step, full_steps)) * share.count() +
           (step > full_steps ? tail_share.count() : 0);
  };
  if (control.first_step < 0 || control.first_step > steps ||
      control.done.samples != samples_after(control.first_step))
    throw Error(fmt::format(
        "train_epoch: cannot start after step {} having seen {} images: an epoch of {} images "
        "at batch {} has {} steps",
        control.first_step, control.done.samples, set.count, batch, steps));
  // The epoch's order: a permutation seeded by (seed, epoch), uploaded once per epoch.
  m.order = epoch_order(epoch);
  if (m.ranks != nullptr) m.order = shard_epoch_order(m.order, batch, m.rank(), m.rank_count());
  backend.copy_to_backend(set.sample_order(), m.order.data(),
                          m.order.size() * sizeof(std::int32_t));

  // Each remaining step's rate and bias corrections, in the table the update reads at batch_step.
  if (!control.step_lr.empty() && control.step_lr.size() != std::size_t(steps))
    throw Error(fmt::format("train_epoch: {} step rates for an epoch of {} steps",
                            control.step_lr.size(), steps));
  {
    std::vector<StepScalars> table(static_cast<std::size_t>(steps));
    for (int k = control.first_step; k < steps; ++k)
      table[std::size_t(k)] =
          m.next_step(control.step_lr.empty() ? m.optimizer.lr : control.step_lr[std::size_t(k)],
                      exec.optimizer_steps + std::uint64_t(k - control.first_step));
    backend.copy_to_backend(m.step_table.get(), table.data(), table.size() * sizeof(StepScalars));
  }
  const float* step_table = m.step_table.as<float>();

  exec.reset_counters();
  // The counters are summed over the ranks at the end: one rank carries what came before.
  if (control.first_step > 0 && m.rank() == 0) exec.set_counters(control.done);
  exec.reset_batch_step();
  exec.set_batch_epoch(epoch);
  if (control.first_step > 0) exec.set_batch_step(std::min(control.first_step, full_steps));
  // One full-batch step: everything a captured graph replays. The batch counter lives on the
  // backend, so the same launches serve every step.
  // With ranks, each divides its gradient by the global batch: the sum is the batch's mean.
  auto enqueue_full_step = [&] {
    if (share.count() > 0)
      exec.gather_at_batch_step(m.norm, m.augment, set.image_bytes(), set.label_bytes(),
                                set.sample_order(), set.pixels, share.count());
    exec.loss_divisor = m.ranks != nullptr ? batch : 0;
    exec.first_sample = std::uint64_t(share.begin);
    exec.train_pass(share.count(), m.optimizer, step_table, exec.batch_step());
    exec.advance_batch_step();
  };
  // Steps summed over ranks through the host cannot be captured.
  m.used_graph =
      replay_steps_as_graph(exec, m.options) && full_steps > 0 && !m.profiler && m.ranks == nullptr;
  if (m.used_graph) {
    const Impl::GraphKey key = m.current_graph_key();
    if (!m.graph_key || !(*m.graph_key == key)) {
      m.graph_key.reset();
      backend.begin_capture();
      try {
        enqueue_full_step();
      } catch (...) {
        backend.end_capture();  // leave the stream usable; the error is the one worth reporting
        throw;
      }
      backend.end_capture();
      m.graph_key = key;
    }
  }
  BatchStats running = control.done;
  auto report_progress = [&](int step) {
    if (!progress) return;
    double loss_sum = 0;
    std::int64_t correct = 0;
    if (exec.poll_counters(&loss_sum, &correct))
      running = BatchStats{loss_sum, correct, local_samples_after(step)};
    progress(step, steps, running);
  };
  // With ranks, a request on any rank stops all of them after the same step.
  auto stop_requested = [&] {
    const bool here = control.stop != nullptr && control.stop->load(std::memory_order_relaxed);
    if (m.ranks == nullptr) return here;
    std::int64_t any = here ? 1 : 0;
    m.ranks->max(&any, 1);
    return any != 0;
  };
  // A mapped set's pages for step k are asked for while step k - 1 runs.
  auto prefetch_step = [&](int k) {
    if (k >= steps) return;
    const int n = k < full_steps ? share.count() : tail_share.count();
    set.prefetch(m.order.data() + std::size_t(std::min(k, full_steps)) * std::size_t(share.count()),
                 n);
  };
  int done = control.first_step;
  prefetch_step(done);
  while (done < steps && !stop_requested()) {
    ScopedRange range("step");
    prefetch_step(done + 1);
    if (done < full_steps) {
      if (m.profiler) m.profiler->before_step(std::int64_t(exec.step_counter));
      if (m.used_graph)
        backend.replay();
      else
        enqueue_full_step();
      if (m.profiler) m.profiler->after_step(std::int64_t(exec.step_counter));
    } else {  // the last, partial batch runs eagerly
      const int n = tail_share.count();
      AugmentParams at = m.augment;  // drawn where a full step would read its counter
      at.step = std::uint32_t(full_steps);
      at.epoch = std::uint32_t(epoch);
      if (n > 0)
        exec.gather(m.norm, at, set.image_bytes(), set.label_bytes(),
                    set.sample_order() + std::size_t(full_steps) * std::size_t(share.count()),
                    set.pixels, n);
      exec.loss_divisor = m.ranks != nullptr ? set.count - full_steps * batch : 0;
      exec.first_sample = std::uint64_t(tail_share.begin);
      exec.train_pass(n, m.optimizer, step_table, exec.batch_step());  // batch_step: full_steps
    }
    ++exec.optimizer_steps;
    ++exec.step_counter;
    ++done;
    report_progress(done);
    if (control.after_step) control.after_step(done, steps);
    if (control.stop_on_nonfinite &&
        !std::isfinite(
            sum_over_ranks(m.ranks, exec.read_counters(local_samples_after(done))).loss_sum))
      break;
  }
  BatchStats stats = exec.read_counters(local_samples_after(done));
  if (m.ranks != nullptr) {
    stats = sum_over_ranks(m.ranks, stats);
    m.share_state_of_rank0();
  }
  return EpochPass{stats, done, steps};
}

std::vector<std::int32_t> Model::epoch_order(int epoch) const {
  std::vector<std::int32_t> order(static_cast<std::size_t>(impl_->train.count));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(impl_->options.seed * 0x9E3779B97F4A7C15ull + std::uint64_t(epoch) + 1);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

bool Model::last_epoch_used_graph() const {
  return impl_->used_graph;
}

void Model::set_profile_steps(std::int64_t first, std::int64_t last) {
  if (first < 0 || last < first)
    throw Error(fmt::format("profile steps {}:{}: need 0 <= first <= last", first, last));
  impl_->profiler = std::make_unique<ProfilerCapture>(ProfileSteps{first, last});
}

BatchStats Model::evaluate_resident() {
  return evaluate_resident(TestTimeAugment::none);
}

BatchStats Model::evaluate_resident(TestTimeAugment tta) {
  Impl& m = *impl_;
  ResidentSet& set = m.eval;
  if (set.count == 0) throw Error("evaluate_resident: no evaluation set uploaded");
  Executor<float>& exec = *m.exec;
  const int batch = exec.batch();
  // With ranks, each evaluates its slice of the set and the sums are added.
  const RankSlice part = rank_slice(set.count, m.rank(), m.rank_count());
  if (tta == TestTimeAugment::flip) {
    AugmentParams mirrored = m.augment;
    mirrored.pad = 0, mirrored.flip = false, mirrored.mirror = true;
    const int classes = m.network.classes();
    const int last = int(exec.layers().size()) - 1;
    BatchStats stats;
    for (int first = part.begin; first < part.end; first += batch) {
      const int n = std::min(batch, part.end - first);
      const std::size_t values = std::size_t(n) * std::size_t(classes);
      std::vector<std::vector<float>> logits;
      for (const AugmentParams& view : {AugmentParams{}, mirrored}) {
        exec.gather(m.norm, view, set.image_bytes(), set.label_bytes(), set.sample_order() + first,
                    set.pixels, n);
        exec.forward(n, false);
        logits.push_back(exec.download(exec.output(last), values));
      }
      std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
      exec.backend().copy_to_host(labels.data(), exec.labels(), labels.size() * sizeof(labels[0]));
      for (int i = 0; i < n; ++i) {
        std::vector<double> mean(static_cast<std::size_t>(classes), 0.0);
        for (const std::vector<float>& view : logits) {
          const float* row = view.data() + std::size_t(i) * classes;
          const double top = *std::max_element(row, row + classes);
          double sum = 0;
          for (int k = 0; k < classes; ++k) sum += std::exp(double(row[k]) - top);
          for (int k = 0; k < classes; ++k) mean[k] += std::exp(double(row[k]) - top) / sum / 2;
        }
        const auto best = std::max_element(mean.begin(), mean.end()) - mean.begin();
        stats.correct += best == labels[std::size_t(i)] ? 1 : 0;
        stats.loss_sum -= std::log(mean[std::size_t(labels[std::size_t(i)])]);
      }
      stats.samples += n;
    }
    return sum_over_ranks(m.ranks, stats);
  }
  exec.reset_counters();
  for (int first = part.begin; first < part.end; first += batch) {
    const int n = std::min(batch, part.end - first);
    exec.gather(m.norm, AugmentParams{}, set.image_bytes(), set.label_bytes(),
                set.sample_order() + first, set.pixels, n);
    exec.forward(n, false);
    exec.loss(n, false);
  }
  return sum_over_ranks(m.ranks, exec.read_counters(part.count()));
}

void Model::set_optimizer(const OptimizerParams& params) {
  params.check();
  Impl& m = *impl_;
  Executor<float>& exec = *m.exec;
  if (params.kind != m.optimizer.kind) {  // another optimizer starts from nothing
    const std::size_t bytes = std::size_t(exec.parameter_count()) * sizeof(float);
    exec.backend().fill_zero(exec.velocity(), bytes);
    if (exec.second_moment() != nullptr) exec.backend().fill_zero(exec.second_moment(), bytes);
    exec.optimizer_steps = 0;
  }
  if (params.uses_second_moment()) exec.ensure_second_moment();
  m.optimizer = params;
}
const OptimizerParams& Model::optimizer() const {
  return impl_->optimizer;
}

void Model::set_label_smoothing(float epsilon) {
  if (!(epsilon >= 0.0f && epsilon < 1.0f))
    throw Error(fmt::format("label smoothing must be in [0, 1), got {}", epsilon));
  impl_->exec->label_smoothing = epsilon;
}
float Model::label_smoothing() const {
  return impl_->exec->label_smoothing;
}

const std::vector<ParameterInfo>& Model::parameters() const {
  return impl_->exec->parameters();
}

const ParameterInfo& Model::parameter_info(const std::string& name) const {
  for (const auto& p : impl_->exec->parameters())
    if (p.name == name) return p;
  throw Error(fmt::format("{} has no parameter named '{}'", impl_->network.name(), name));
}

const std::vector<ParameterInfo>& Model::state_tensors() const {
  return impl_->exec->state();
}

namespace {
const ParameterInfo& state_info(const Model& model, const std::string& name) {
  for (const auto& p : model.state_tensors())
    if (p.name == name) return p;
  throw Error(fmt::format("{} has no state tensor named '{}'", model.network().name(), name));
}
}  // namespace

namespace {
std::vector<float> read_region(Executor<float>& exec, const float* base, const ParameterInfo& p) {
  return exec.download(base + p.offset, static_cast<std::size_t>(p.count));
}
void write_region(Executor<float>& exec, float* base, const ParameterInfo& p,
                  const std::vector<float>& values) {
  if (values.size() != static_cast<std::size_t>(p.count))
    throw Error(fmt::format("{}: expected {} values, got {}", p.name, p.count, values.size()));
  exec.backend().copy_to_backend(base + p.offset, values.data(), values.size() * sizeof(float));
}
}  // namespace

std::vector<float> Model::parameter(const std::string& name) const {
  return read_region(*impl_->exec, impl_->exec->params(), parameter_info(name));
}
void Model::set_parameter(const std::string& name, const std::vector<float>& values) {
  write_region(*impl_->exec, impl_->exec->params(), parameter_info(name), values);
}
std::vector<float> Model::gradient(const std::string& name) const {
  return read_region(*impl_->exec, impl_->exec->grads(), parameter_info(name));
}
std::vector<float> Model::momentum(const std::string& name) const {
  return read_region(*impl_->exec, impl_->exec->velocity(), parameter_info(name));
}
void Model::set_momentum(const std::string& name, const std::vector<float>& values) {
  write_region(*impl_->exec, impl_->exec->velocity(), parameter_info(name), values);
}
namespace {
float* second_moment_of(const Model& model, Executor<float>& exec) {
  if (!model.optimizer().uses_second_moment())
    throw Error(
        fmt::format("the optimizer {} keeps no second moment", to_string(model.optimizer().kind)));
  return exec.second_moment();
}
}  // namespace
std::vector<float> Model::second_moment(const std::string& name) const {
  return read_region(*impl_->exec, second_moment_of(*this, *impl_->exec), parameter_info(name));
}
void Model::set_second_moment(const std::string& name, const std::vector<float>& values) {
  write_region(*impl_->exec, second_moment_of(*this, *impl_->exec), parameter_info(name), values);
}
std::uint64_t Model::optimizer_steps() const {
  return impl_->exec->optimizer_steps;
}
void Model::set_optimizer_steps(std::uint64_t steps) {
  impl_->exec->optimizer_steps = steps;
}
std::vector<float> Model::state(const std::string& name) const {
  return read_region(*impl_->exec, impl_->exec->state_values(), state_info(*this, name));
}
void Model::check_state(const std::string& name, const std::vector<float>& values) const {
  const std::vector<ParameterInfo>& infos = state_tensors();
  for (std::size_t k = 0; k < infos.size(); ++k) {
    if (infos[k].name != name || !impl_->exec->plan().state_non_negative[k]) continue;
    for (std::size_t i = 0; i < values.size(); ++i)
      if (!(values[i] >= 0.0f))  // NaN fails too
        throw Error(fmt::format("{}: value {} at index {} is not a variance (must be >= 0)", name,
                                values[i], i));
  }
  state_info(*this, name);  // an unknown name throws
}
void Model::set_state(const std::string& name, const std::vector<float>& values) {
  check_state(name, values);
  write_region(*impl_->exec, impl_->exec->state_values(), state_info(*this, name), values);
}
std::int64_t Model::parameter_count() const {
  return impl_->exec->parameter_count();
}

std::uint64_t Model::step_counter() const {
  return impl_->exec->step_counter;
}
void Model::set_step_counter(std::uint64_t steps) {
  impl_->exec->step_counter = steps;
}

Model::TrainingState Model::training_state() const {
  Executor<float>& exec = *impl_->exec;
  const auto count = static_cast<std::size_t>(exec.parameter_count());
  TrainingState state{exec.download(exec.params(), count),
                      exec.download(exec.velocity(), count),
                      {},
                      exec.download(exec.state_values(), std::size_t(exec.state_count())),
                      exec.step_counter,
                      exec.optimizer_steps};
  if (exec.second_moment() != nullptr)
    state.second_moment = exec.download(exec.second_moment(), count);
  return state;
}

void Model::restore_training_state(const TrainingState& state) {
  Executor<float>& exec = *impl_->exec;
  const auto count = static_cast<std::size_t>(exec.parameter_count());
  const std::size_t second = exec.second_moment() != nullptr ? count : 0;
  if (state.parameters.size() != count || state.momentum.size() != count ||
      state.second_moment.size() != second || state.state.size() != std::size_t(exec.state_count()))
    throw Error(fmt::format(
        "restore_training_state: {} has {} parameters and {} state values, the state holds {}, "
        "{} and {}",
        impl_->network.name(), count, exec.state_count(), state.parameters.size(),
        state.momentum.size(), state.state.size()));
  exec.upload(exec.params(), state.parameters);
  exec.upload(exec.velocity(), state.momentum);
  if (second > 0) exec.upload(exec.second_moment(), state.second_moment);
  exec.upload(exec.state_values(), state.state);
  exec.step_counter = state.step_counter;
  exec.optimizer_steps = state.optimizer_steps;
}

}  // namespace cnnrt
