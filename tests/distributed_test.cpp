// Data-parallel training. The slice arithmetic runs in any process; the rest needs ranks and
// skips without them: ctest runs this binary again under `mpiexec -n 2` (distributed_2_ranks).
// Every rank runs every test in the same order, so their collective calls pair up.
#include "cnnrt/distributed.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/trainer.hpp"
#include "host/executor.hpp"
#include "host/normalization.hpp"
#include "tests/model_util.hpp"

namespace cnnrt {
namespace {

// One process with the same global batch adds its per-sample terms in another order than the
// ranks' sum of their halves: a few steps of LeNet-5 stay this close.
constexpr float kOneProcessAtol = 2e-5f;
constexpr float kOneProcessRtol = 1e-3f;

TEST(RankSlice, DisjointAndCoverEveryBatch) {
  for (int ranks = 1; ranks <= 9; ++ranks)
    for (int batch = 0; batch <= 70; ++batch) {
      int next = 0;
      for (int r = 0; r < ranks; ++r) {
        const RankSlice s = rank_slice(batch, r, ranks);
        EXPECT_EQ(s.begin, next) << "batch " << batch << " rank " << r << " of " << ranks;
        EXPECT_GE(s.count(), batch / ranks);
        EXPECT_LE(s.count(), (batch + ranks - 1) / ranks);
        next = s.end;
      }
      EXPECT_EQ(next, batch) << "batch " << batch << " over " << ranks << " ranks";
    }
  EXPECT_THROW(rank_slice(8, 2, 2), Error);
  EXPECT_THROW(rank_slice(8, 0, 0), Error);
}

TEST(ShardEpochOrder, RanksTakeDisjointSlicesOfEachBatch) {
  // 23 samples at batch 8: two full steps and a last step of 7.
  std::vector<std::int32_t> order(23);
  for (int i = 0; i < 23; ++i) order[std::size_t(i)] = 100 + (i * 7) % 23;
  const int ranks = 3, batch = 8;
  std::vector<std::vector<std::int32_t>> parts;
  for (int r = 0; r < ranks; ++r) parts.push_back(shard_epoch_order(order, batch, r, ranks));
  // Batch s holds order[8s..8s+7]; rank r's share of it: sizes 2,3,3 of 8 and 2,2,3 of 7.
  const int full[3] = {2, 3, 3}, tail[3] = {2, 2, 3};
  for (int r = 0; r < ranks; ++r) {
    ASSERT_EQ(parts[std::size_t(r)].size(), std::size_t(2 * full[r] + tail[r]));
    int begin = 0;
    for (int q = 0; q < r; ++q) begin += full[q];
    for (int s = 0; s < 2; ++s)
      for (int j = 0; j < full[r]; ++j)
        EXPECT_EQ(parts[std::size_t(r)][std::size_t(s * full[r] + j)],
                  order[std::size_t(s * batch + begin + j)]);
    int tail_begin = 0;
    for (int q = 0; q < r; ++q) tail_begin += tail[q];
    for (int j = 0; j < tail[r]; ++j)
      EXPECT_EQ(parts[std::size_t(r)][std::size_t(2 * full[r] + j)],
                order[std::size_t(16 + tail_begin + j)]);
  }
}

// The job's communicator, or a skip.
#define REQUIRE_RANKS(ranks)                                           \
  const std::shared_ptr<Communicator> ranks = launched_communicator(); \
  if (!ranks) GTEST_SKIP() << "not started by an MPI launcher (see distributed_2_ranks)"

TEST(Communicator, SumsOfEverySize) {
  REQUIRE_RANKS(ranks);
  const int n = ranks->size();
  // Small integers: the sums are exact, so the expected value is known on every rank.
  for (const std::size_t count :
       {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(61706)}) {
    std::vector<float> values(count);
    for (std::size_t i = 0; i < count; ++i) values[i] = float((ranks->rank() + 1) * int(i % 97));
    ranks->sum(values.data(), count);
    for (std::size_t i = 0; i < count; ++i)
      ASSERT_EQ(values[i], float(int(i % 97) * n * (n + 1) / 2))
          << "count " << count << " at " << i;
  }
  std::int64_t big[2] = {std::int64_t(1) << 40, ranks->rank()};
  ranks->max(big, 2);
  EXPECT_EQ(big[0], std::int64_t(1) << 40);
  EXPECT_EQ(big[1], n - 1);
}

TEST(Communicator, DisagreeingRanksGetOneError) {
  REQUIRE_RANKS(ranks);
  try {
    check_ranks_agree(*ranks, {{"epochs", 3}, {"batch size", 64 + ranks->rank()}});
    FAIL() << "no error";
  } catch (const CollectiveError& e) {
    EXPECT_NE(
        std::string(e.what()).find("disagree on the batch size: rank 0 has 64, rank 1 has 65"),
        std::string::npos)
        << e.what();
  }
  CompileOptions o = test::cpu_options(32 + ranks->rank(), 1, 1);
  o.communicator = ranks;
  EXPECT_THROW(Model(load_network("lenet5"), o), CollectiveError);
}

std::vector<float> all_parameters(const Model& model) {
  std::vector<float> values;
  for (const ParameterInfo& p : model.parameters()) {
    const std::vector<float> v = model.parameter(p.name);
    values.insert(values.end(), v.begin(), v.end());
  }
  return values;
}

std::int64_t bits_hash(const std::vector<float>& values) {
  std::string bytes(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return setting_hash(bytes);
}

// 97 images at a global batch of 32: three full steps and a last step of 1, which leaves rank 1
// without a sample there.
constexpr int kImages = 97, kBatch = 32;

CompileOptions rank_options(const std::shared_ptr<Communicator>& ranks) {
  CompileOptions o = test::cpu_options(kBatch, 7, 1);
  o.communicator = ranks;
  return o;
}

// One process that, for every global batch, computes each rank's share's gradient in turn (each
// divided by the global batch, as the ranks do), adds them as MPI's sum of two does, and takes the
// update: the ranks must give these bits.
std::vector<float> accumulated_half_batches(const Network& network, const Dataset& data,
                                            const std::vector<std::int32_t>& order,
                                            const OptimizerParams& sgd) {
  CompileOptions o = test::cpu_options(kBatch / 2, 7, 1);
  std::unique_ptr<Executor<float>> exec = make_executor(network, o);
  const SampleShape in = network.input();
  const NormalizeParams norm = to_normalize_params(Normalization{}, in.c, in.h * in.w);
  const std::size_t count = std::size_t(exec->parameter_count());
  std::uint64_t updates = 0;
  for (int first = 0; first < kImages; first += kBatch) {
    const int global = std::min(kBatch, kImages - first);
    std::vector<float> sum;
    for (int r = 0; r < 2; ++r) {
      const RankSlice s = rank_slice(global, r, 2);
      std::vector<float> grads(count, 0.0f);
      if (s.count() > 0) {
        exec->gather(norm, AugmentParams{}, data.images.data(), data.labels.data(),
                     order.data() + first + s.begin, in.c * in.h * in.w, s.count());
        exec->reset_counters();
        exec->forward(s.count(), true);
        exec->loss_divisor = global;
        exec->loss(s.count(), true);
        exec->backward(s.count());
        grads = exec->download(exec->grads(), count);
      }
      if (r == 0)
        sum = grads;
      else
        for (std::size_t i = 0; i < count; ++i) sum[i] += grads[i];
    }
    exec->upload(exec->grads(), sum);
    exec->update(sgd, StepScalars::at(sgd, sgd.lr, ++updates));
  }
  return exec->download(exec->params(), count);
}

TEST(DistributedTraining, BitIdenticalToAccumulatedHalfBatches) {
  REQUIRE_RANKS(ranks);
  ASSERT_EQ(ranks->size(), 2) << "this test pairs two ranks";
  const Network network = load_network("lenet5");
  const Dataset data = test::synthetic_set(kImages, 3);
  Model model(network, rank_options(ranks));
  const OptimizerParams sgd{0.05f, 0.9f, 0.0f};
  model.set_optimizer(sgd);
  model.upload_train_set(data);
  const std::vector<float> before = all_parameters(model);
  const BatchStats stats = model.train_epoch(0);
  const std::vector<float> after = all_parameters(model);
  EXPECT_EQ(stats.samples, kImages);
  EXPECT_GT(stats.loss_sum, 0.0);
  std::size_t moved = 0;
  for (std::size_t i = 0; i < after.size(); ++i) moved += after[i] != before[i] ? 1 : 0;
  ASSERT_GT(moved, after.size() / 2) << "the ranks' updates moved almost nothing";

  const std::vector<float> expected =
      accumulated_half_batches(network, data, model.epoch_order(0), sgd);
  ASSERT_EQ(after.size(), expected.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < after.size(); ++i) differing += after[i] != expected[i] ? 1 : 0;
  EXPECT_EQ(differing, 0u) << "of " << after.size() << " parameters";

  // Every rank holds the same bits.
  const std::int64_t mine = bits_hash(after);
  std::vector<std::int64_t> all(std::size_t(ranks->size()));
  ranks->all_gather(&mine, 1, all.data());
  for (const std::int64_t h : all) EXPECT_EQ(h, all[0]);
}

// The same network trained by the ranks and by one process at the same global batch.
struct RanksAndOneProcess {
  Model distributed, single;
  RanksAndOneProcess(const Network& network, const std::shared_ptr<Communicator>& ranks,
                     const Dataset& data)
      : distributed(network, rank_options(ranks)),
        single(network, test::cpu_options(kBatch, 7, 1)) {
    for (Model* m : {&distributed, &single}) {
      m->set_optimizer(OptimizerParams{0.05f, 0.9f, 0.0f});
      m->upload_train_set(data);
      m->upload_eval_set(data);
    }
  }
  // Parameters farther apart than the one-process tolerance.
  std::size_t parameters_apart() const {
    const std::vector<float> pa = all_parameters(distributed), pb = all_parameters(single);
    EXPECT_EQ(pa.size(), pb.size());
    std::size_t far = 0;
    for (std::size_t i = 0; i < pa.size() && i < pb.size(); ++i)
      far +=
          std::fabs(pa[i] - pb[i]) <= kOneProcessAtol + kOneProcessRtol * std::fabs(pb[i]) ? 0 : 1;
    return far;
  }
};

TEST(DistributedTraining, CloseToOneProcessWithTheSameGlobalBatch) {
  REQUIRE_RANKS(ranks);
  RanksAndOneProcess runs(load_network("lenet5"), ranks, test::synthetic_set(kImages, 3));
  const BatchStats a = runs.distributed.train_epoch(0), b = runs.single.train_epoch(0);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_NEAR(a.loss_sum, b.loss_sum, 1e-3 * b.loss_sum);
  EXPECT_EQ(runs.parameters_apart(), 0u);
  // The evaluation is split across the ranks and summed: the same counts as one process.
  const BatchStats ea = runs.distributed.evaluate_resident(), eb = runs.single.evaluate_resident();
  EXPECT_EQ(ea.samples, kImages);
  EXPECT_NEAR(double(ea.correct), double(eb.correct), 1.0);
}

// Dropout draws each sample's mask at its position in the global batch, so the ranks drop what one
// process would: the same tolerance holds with dropout as without.
TEST(DistributedTraining, DropoutMasksFollowTheGlobalBatch) {
  REQUIRE_RANKS(ranks);
  const Network network = network_from_json(
      R"({"name": "dropout_net", "input": [1, 28, 28], "classes": 10, "layers": [
        {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 5}, {"type": "relu"},
        {"type": "max_pool", "window": 2, "stride": 2},
        {"type": "dense", "name": "fc1", "units": 32}, {"type": "relu"},
        {"type": "dropout", "p": 0.5},
        {"type": "dense", "name": "fc2", "units": 10}]})",
      "dropout_net");
  RanksAndOneProcess runs(network, ranks, test::synthetic_set(kImages, 3));
  const std::vector<float> before = all_parameters(runs.single);
  runs.distributed.train_epoch(0);
  runs.single.train_epoch(0);
  std::size_t moved = 0;
  const std::vector<float> after = all_parameters(runs.single);
  for (std::size_t i = 0; i < after.size(); ++i) moved += after[i] != before[i] ? 1 : 0;
  ASSERT_GT(moved, after.size() / 2);
  EXPECT_EQ(runs.parameters_apart(), 0u);
}

// A directory every rank names the same (rank 0's process id).
std::string shared_scratch(Communicator& ranks, const char* what) {
  std::int64_t id = ranks.rank() == 0 ? std::int64_t(::getpid()) : 0;
  ranks.broadcast(&id, sizeof(id), 0);
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("cnnrt_distributed_" + std::string(what) + "_" + std::to_string(id)))
                              .string();
  if (ranks.rank() == 0) std::filesystem::create_directories(dir);
  ranks.barrier();
  return dir;
}

struct TrainedRun {
  std::vector<float> params;
  EpochReport last;
};

TrainedRun train_run(const std::shared_ptr<Communicator>& ranks, int epochs,
                     const std::string& checkpoint, const std::string& resume,
                     const std::atomic<bool>* stop = nullptr,
                     std::function<void(int, int, int)> on_step = {}) {
  Model model(load_network("lenet5"), rank_options(ranks));
  TrainOptions t;
  t.epochs = epochs;
  t.quiet = true;
  t.checkpoint_path = checkpoint;
  t.resume_path = resume;
  t.stop = stop;
  t.on_step = std::move(on_step);
  const Dataset data = test::synthetic_set(kImages, 3);
  const EpochReport last = train(model, data, data, t);
  return TrainedRun{all_parameters(model), last};
}

TEST(DistributedTraining, Rank0WritesCheckpointsAndResumeMatches) {
  REQUIRE_RANKS(ranks);
  const std::string dir = shared_scratch(*ranks, "resume");
  // Each rank is given its own path: only rank 0's may appear.
  const std::string mine = dir + "/rank" + std::to_string(ranks->rank()) + ".safetensors";
  const std::string rank0 = dir + "/rank0.safetensors";
  const TrainedRun whole = train_run(ranks, 2, "", "");
  train_run(ranks, 1, mine, "");
  ranks->barrier();
  EXPECT_TRUE(std::filesystem::exists(rank0));
  for (int r = 1; r < ranks->size(); ++r)
    EXPECT_FALSE(std::filesystem::exists(dir + "/rank" + std::to_string(r) + ".safetensors"));
  const TrainedRun resumed = train_run(ranks, 2, "", rank0);
  EXPECT_EQ(resumed.params, whole.params);
  EXPECT_EQ(resumed.last.test.correct, whole.last.test.correct);

  // A stop requested on the last rank alone ends every rank after the same step; resuming from
  // its checkpoint gives the uninterrupted run's bits.
  std::atomic<bool> stop{false};
  const bool last_rank = ranks->rank() == ranks->size() - 1;
  const TrainedRun stopped = train_run(ranks, 2, mine, "", &stop, [&](int epoch, int step, int) {
    if (last_rank && epoch == 2 && step == 2) stop = true;
  });
  EXPECT_TRUE(stopped.last.stopped);
  std::int64_t done = stopped.last.steps_done;
  std::vector<std::int64_t> all(std::size_t(ranks->size()));
  ranks->all_gather(&done, 1, all.data());
  for (const std::int64_t d : all) EXPECT_EQ(d, 2);
  const TrainedRun continued = train_run(ranks, 2, "", rank0);
  EXPECT_EQ(continued.params, whole.params);
  ranks->barrier();
  if (ranks->rank() == 0) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cnnrt
