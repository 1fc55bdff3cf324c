// The plan (host/executor.hpp): buffers each owned by one layer or by the network, flat step lists
// that name what they read and write, fusion decided when the plan is built. And the layer-unit
// seam itself: a layer kind registered from outside the library, with non-parameter state, trains,
// checkpoints and reloads without any change to Network, the executor or the checkpoint code.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "host/cpu_backend.hpp"
#include "host/executor.hpp"
#include "host/layer.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

constexpr int kBatch = 4;

// Every fusion pattern and the ones that must stay apart (as tests/fusion_test.cpp's network).
Network patterns() {
  Network n({1, 12, 12}, 10, "patterns");
  n.sigmoid();  // first: nothing in front to run it
  n.conv2d(4, 3, 1, Padding::same()).leaky_relu();
  n.conv2d(6, 3).relu().max_pool(2, 2);
  n.conv2d(6, 3, 1, Padding::same()).sigmoid().avg_pool(2, 1);
  n.dense(16).relu().dropout(0.25f);
  n.dense(12).leaky_relu().dense(10);
  return n;
}

PlanTarget cpu_target() {
  PlanTarget t;
  t.cpu_threads = 2;
  return t;
}

std::vector<const std::vector<Step>*> step_lists(const Plan& plan) {
  return {&plan.training_forward, &plan.inference_forward, &plan.backward};
}

std::string names(const Plan& plan, const std::vector<int>& ids) {
  std::string text;
  for (int id : ids) text += plan.buffers.at(std::size_t(id)).name + " ";
  return text;
}

TEST(PlanTest, NoStepWritesAnotherLayersBuffer) {
  for (bool fuse : {true, false}) {
    SCOPED_TRACE(fuse ? "fused" : "unfused");
    const Plan plan = build_plan(patterns(), kBatch, fuse, cpu_target());
    std::size_t steps = 0;
    for (const std::vector<Step>* list : step_lists(plan))
      for (const Step& s : *list) {
        ++steps;
        SCOPED_TRACE(s.range + " writes " + names(plan, s.writes));
        EXPECT_FALSE(s.writes.empty());
        EXPECT_FALSE(s.reads.empty());
        for (int id : s.writes) {
          const std::size_t owner = plan.buffers.at(std::size_t(id)).owner;
          EXPECT_TRUE(owner == s.layer || owner == s.fused) << plan.buffers[std::size_t(id)].name;
        }
        for (int id : s.reads) EXPECT_LT(std::size_t(id), plan.buffers.size());
      }
    EXPECT_GT(steps, 0u);
  }
}

// Regions of the arena do not overlap; views (a layer's parameters inside the parameter region)
// lie inside a region.
TEST(PlanTest, ArenaRegionsAreDisjoint) {
  const Plan plan = build_plan(patterns(), kBatch, true, cpu_target());
  std::vector<const Buffer*> sorted;
  for (const Buffer& b : plan.buffers)
    if (b.bytes > 0) sorted.push_back(&b);
  std::sort(sorted.begin(), sorted.end(),
            [](const Buffer* a, const Buffer* b) { return a->offset < b->offset; });
  const std::set<std::string> regions = {"params", "grads", "velocity", "state"};
  std::size_t region_end = 0;
  std::string region;
  for (const Buffer* b : sorted) {
    SCOPED_TRACE(b->name);
    EXPECT_LE(b->offset + b->bytes, plan.arena_bytes);
    const bool inside = b->offset + b->bytes <= region_end && !regions.count(b->name);
    if (inside) continue;  // a view into the region before it
    EXPECT_GE(b->offset, region_end) << "overlaps " << region;
    region_end = b->offset + b->bytes;
    region = b->name;
  }
}

TEST(PlanTest, FusionIsDecidedWhenThePlanIsBuilt) {
  const Network n = patterns();
  const Plan fused = build_plan(n, kBatch, true, cpu_target());
  const Plan plain = build_plan(n, kBatch, false, cpu_target());
  auto forward_layers = [](const Plan& p) {
    std::vector<std::string> layers;
    for (const Step& s : p.training_forward) layers.push_back(p.layers[s.layer].unit->name());
    return layers;
  };
  // Unfused, every layer has its forward step, in order.
  std::vector<std::string> all;
  for (const LayerSpec& s : n.layers()) all.push_back(s.name);
  EXPECT_EQ(forward_layers(plain), all);
  // Fused, the activations behind a convolution or dense layer run inside it.
  EXPECT_EQ(forward_layers(fused),
            (std::vector<std::string>{"sigmoid1", "conv1", "conv2", "pool1", "conv3", "pool2",
                                      "fc1", "dropout1", "fc2", "fc3"}));
  for (const Step& s : fused.training_forward)
    if (s.fused != kNoLayer) {
      EXPECT_TRUE(fused.layers[s.fused].forward_fused);
      EXPECT_EQ(s.activated, fused.layers[s.fused].out);
    }
  // Backward: the activations in front of a pool or dense layer run inside its data gradient,
  // which then writes the gradient at the activation's input.
  std::vector<std::string> backward_fused;
  for (const Step& s : fused.backward)
    if (s.fused != kNoLayer) {
      EXPECT_EQ(s.kind, StepKind::backward_data);
      EXPECT_EQ(s.din, fused.layers[s.fused].din);
      backward_fused.push_back(fused.layers[s.fused].unit->name());
    }
  // (relu5 sits in front of dropout, leaky_relu2 in front of a convolution: not fused.)
  EXPECT_EQ(backward_fused, (std::vector<std::string>{"leaky_relu6", "sigmoid4", "relu3"}));
  for (const Step& s : plain.backward) EXPECT_EQ(s.fused, kNoLayer);
}

TEST(PlanTest, InferenceSkipsDropoutAndReadsItsInput) {
  const Plan plan = build_plan(patterns(), kBatch, true, cpu_target());
  std::size_t dropout = 0;
  for (std::size_t i = 0; i < plan.layers.size(); ++i)
    if (plan.layers[i].unit->identity_in_inference()) dropout = i;
  ASSERT_GT(dropout, 0u);
  for (const Step& s : plan.inference_forward) EXPECT_NE(s.layer, dropout);
  EXPECT_EQ(plan.inference_out[dropout], plan.inference_out[dropout - 1]);
  const auto next = std::find_if(plan.inference_forward.begin(), plan.inference_forward.end(),
                                 [&](const Step& s) { return s.layer == dropout + 1; });
  ASSERT_NE(next, plan.inference_forward.end());
  EXPECT_EQ(next->in, plan.inference_out[dropout - 1]);
  EXPECT_TRUE(plan.varies_per_step);
}

TEST(PlanTest, WeightGradientsMayRunBesideButNotTheFirstLayers) {
  Network n({1, 8, 8}, 3, "two-convs");
  n.conv2d(2, 3).relu().conv2d(2, 3).relu().dense(3);
  const Plan plan = build_plan(n, kBatch, true, cpu_target());
  int weights = 0;
  for (const Step& s : plan.backward)
    if (s.kind == StepKind::backward_weights) {
      ++weights;
      EXPECT_EQ(s.beside, s.layer > 0) << s.range;
    } else {
      EXPECT_GT(s.layer, 0u) << "the first layer has no data gradient";
    }
  EXPECT_EQ(weights, 3);
}

// --- A layer kind defined outside the library, with state -------------------------------------

// "shift": out = in + offset[c], one state tensor `offset` [c] that starts at 0.5 and is not a
// parameter. CPU only.
class ShiftUnit final : public LayerUnitOf<ShiftUnit> {
 public:
  explicit ShiftUnit(const LayerSpec& spec) : LayerUnitOf(spec.name) {}
  SampleShape output_shape(const SampleShape& in) const override { return in; }
  std::vector<StateSpec> state(const SampleShape& in) const override {
    return {StateSpec{"offset", {in.c}, 0.5}};
  }
  std::int64_t flops(const SampleShape&, const SampleShape& out) const override {
    return out.size();
  }
  std::string describe() const override { return "shift"; }
  void write_fields(nlohmann::json&) const override {}

  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext&) const {
    const std::size_t plane = std::size_t(p.in_shape.h) * p.in_shape.w;
    for (std::size_t i = 0; i < p.out_count(); ++i)
      p.out[i] = p.in[i] + p.state[0][(i / plane) % std::size_t(p.in_shape.c)];
  }
  void forward_cuda(const LayerPass<float>&, CudaContext&) const {
    throw Error("shift: a CPU-only test layer");
  }
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext&) const {
    std::copy(p.dout, p.dout + p.out_count(), p.din);
  }
  void backward_data_cuda(const LayerPass<float>&, CudaContext&) const {
    throw Error("shift: a CPU-only test layer");
  }
};

std::shared_ptr<const LayerUnit> make_shift(const LayerSpec& spec, const std::string&) {
  return std::make_shared<ShiftUnit>(spec);
}

void register_shift_once() {
  static const bool registered = [] {
    register_layer_type(LayerType{"shift", "shift", "shift", make_shift});
    return true;
  }();
  (void)registered;
}

Network shifted_network() {
  register_shift_once();
  Network n({2, 4, 4}, 3, "shifted");
  n.conv2d(2, 3, 1, Padding::same());
  n.add(LayerSpec{"shift", "", {}});
  n.relu().dense(3);
  return n;
}

TEST(LayerUnitTest, ARegisteredKindTrainsWithStateTheOptimizerDoesNotTouch) {
  const Network n = shifted_network();
  EXPECT_EQ(n.layers()[1].name, "shift1");
  CompileOptions options;
  options.batch_size = kBatch;
  options.cpu_threads = 1;
  Model model(n, options);
  ASSERT_EQ(model.state_tensors().size(), 1u);
  EXPECT_EQ(model.state_tensors()[0].name, "shift1.offset");
  EXPECT_EQ(model.state("shift1.offset"), (std::vector<float>{0.5f, 0.5f}));
  for (const ParameterInfo& p : model.parameters())
    EXPECT_EQ(p.name.rfind("shift1", 0), std::string::npos) << "state is not a parameter";

  // The state reaches the forward pass: shifting by more changes the logits.
  std::vector<float> images(std::size_t(kBatch) * 32);
  for (std::size_t i = 0; i < images.size(); ++i) images[i] = float(i % 7) / 7.0f - 0.4f;
  const std::vector<std::int32_t> labels = {0, 1, 2, 1};
  const std::vector<float> before = model.logits(images.data(), kBatch);
  model.set_state("shift1.offset", {2.0f, -1.0f});
  EXPECT_NE(model.logits(images.data(), kBatch), before);

  // Training with weight decay moves the parameters, never the state.
  OptimizerParams sgd;
  sgd.lr = 0.1f, sgd.momentum = 0.9f, sgd.weight_decay = 0.1f;
  model.set_optimizer(sgd);
  const std::vector<float> weights = model.parameter("conv1.weight");
  for (int step = 0; step < 3; ++step) model.train_step(images.data(), labels.data(), kBatch);
  EXPECT_NE(model.parameter("conv1.weight"), weights);
  EXPECT_EQ(model.state("shift1.offset"), (std::vector<float>{2.0f, -1.0f}));

  // A checkpoint carries it; another model of the network loads it back.
  const test::ScratchDir dir("plan_test");
  const std::string path = dir.file("shifted.safetensors");
  save_checkpoint(path, model, 1);
  Model reloaded(n, options);
  EXPECT_EQ(reloaded.state("shift1.offset"), (std::vector<float>{0.5f, 0.5f}));
  load_checkpoint(path, reloaded);
  EXPECT_EQ(reloaded.state("shift1.offset"), (std::vector<float>{2.0f, -1.0f}));
  EXPECT_EQ(reloaded.logits(images.data(), kBatch), model.logits(images.data(), kBatch));
}

TEST(LayerUnitTest, UnknownTypesAndTakenNamesAreRefused) {
  register_shift_once();
  EXPECT_THROW(register_layer_type(LayerType{"shift", "shift", "shift", make_shift}), Error);
  Network n({1, 4, 4}, 2);
  const std::string message = test::error_message([&] { n.add(LayerSpec{"bogus", "", {}}); });
  EXPECT_TRUE(test::contains(message, "unknown layer type (known: conv2d, relu")) << message;
  EXPECT_TRUE(test::contains(message, "shift")) << message;
  // Fields given through the C++ API are held to the model file's rules.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_TRUE(test::contains(test::error_message([&] {
                               n.add(LayerSpec{"dense", "", {{"units", deep}}});
                             }),
                             "dense: field 'units' nests deeper than 16 levels"));
  EXPECT_TRUE(test::contains(test::error_message([&] {
                               n.add(LayerSpec{"dense", "", {{"units", "twelve"}}});
                             }),
                             "field 'units' is not JSON: twelve"));
  EXPECT_TRUE(test::contains(test::error_message([&] {
                               n.add(LayerSpec{"dense", "", {{"units", "1.5"}}});
                             }),
                             "'units' must be an integer"));
}

}  // namespace
}  // namespace cnnrt
