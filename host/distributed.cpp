// The communicator over MPI (built with CNNRT_WITH_MPI), the rank slices, and launcher detection.
#include "cnnrt/distributed.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <vector>

#ifdef CNNRT_WITH_MPI
#include <mpi.h>
#endif

namespace cnnrt {

Communicator::~Communicator() = default;

CollectiveError::CollectiveError(const std::string& message) : Error(message) {}
CollectiveError::~CollectiveError() = default;

RankSlice rank_slice(int batch, int rank, int ranks) {
  if (ranks <= 0 || rank < 0 || rank >= ranks || batch < 0)
    throw Error(fmt::format("rank_slice: rank {} of {} ranks, batch {}", rank, ranks, batch));
  // floor(r * batch / ranks) in 64 bits: batch * ranks may pass INT_MAX.
  auto edge = [&](int r) {
    return static_cast<int>(std::int64_t(r) * std::int64_t(batch) / std::int64_t(ranks));
  };
  return RankSlice{edge(rank), edge(rank + 1)};
}

std::vector<std::int32_t> shard_epoch_order(const std::vector<std::int32_t>& order, int batch,
                                            int rank, int ranks) {
  if (batch <= 0) throw Error(fmt::format("shard_epoch_order: batch {}", batch));
  const int count = static_cast<int>(order.size());
  const int full_steps = count / batch;
  const RankSlice share = rank_slice(batch, rank, ranks);
  const RankSlice tail = rank_slice(count - full_steps * batch, rank, ranks);
  std::vector<std::int32_t> mine;
  mine.reserve(std::size_t(full_steps) * std::size_t(share.count()) + std::size_t(tail.count()));
  for (int s = 0; s < full_steps; ++s)
    mine.insert(mine.end(), order.begin() + std::ptrdiff_t(s) * batch + share.begin,
                order.begin() + std::ptrdiff_t(s) * batch + share.end);
  const auto last = order.begin() + std::ptrdiff_t(full_steps) * batch;
  mine.insert(mine.end(), last + tail.begin, last + tail.end);
  return mine;
}

void check_ranks_agree(Communicator& ranks, const std::vector<RankSetting>& settings) {
  const std::size_t fields = settings.size();
  std::vector<std::int64_t> mine(fields), all(fields * std::size_t(ranks.size()));
  for (std::size_t i = 0; i < fields; ++i) mine[i] = settings[i].second;
  ranks.all_gather(mine.data(), fields, all.data());
  for (std::size_t i = 0; i < fields; ++i)
    for (int r = 1; r < ranks.size(); ++r) {
      const std::int64_t first = all[i], other = all[std::size_t(r) * fields + i];
      if (other != first)
        throw CollectiveError(fmt::format(
            "the {} ranks disagree on the {}: rank 0 has {}, rank {} has {} (start every rank "
            "with the same model, data and settings)",
            ranks.size(), settings[i].first, first, r, other));
    }
}

double time_gradient_sum(Communicator& ranks, std::size_t count, int warmup, int repeats) {
  if (repeats <= 0 || warmup < 0)
    throw Error(fmt::format("time_gradient_sum: {} warm-up and {} timed repeats", warmup, repeats));
  std::vector<float> values(count, 1.0f);
  std::vector<double> ms;
  for (int k = 0; k < warmup + repeats; ++k) {
    std::fill(values.begin(), values.end(), 1.0f);  // sums of ones stay finite
    ranks.barrier();
    const auto start = std::chrono::steady_clock::now();
    ranks.sum(values.data(), count);
    double elapsed =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::int64_t slowest = std::int64_t(elapsed * 1000.0);  // microseconds
    ranks.max(&slowest, 1);
    elapsed = double(slowest) / 1000.0;
    if (k >= warmup) ms.push_back(elapsed);
  }
  std::nth_element(ms.begin(), ms.begin() + std::ptrdiff_t(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

std::int64_t setting_hash(const std::string& text) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return static_cast<std::int64_t>(hash >> 1);
}

namespace {

// The launcher's count of ranks from its environment: Open MPI's mpirun, MPICH/Hydra and Slurm's
// PMI, Slurm's srun. 1 when none says more.
int launcher_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && std::atoi(value) > 1) return std::atoi(value);
  }
  return 1;
}

std::mutex communicator_mutex;
std::shared_ptr<Communicator> communicator;

}  // namespace

bool launched_as_ranks() {
  return launcher_ranks() > 1;
}

std::shared_ptr<Communicator> active_communicator() {
  std::lock_guard<std::mutex> lock(communicator_mutex);
  return communicator;
}

#ifdef CNNRT_WITH_MPI

namespace {

void check_mpi(int status, const char* what) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw Error(fmt::format("{} failed: {} (a rank of the job may have ended; see its output)", what,
                          std::string(text, std::size_t(length))));
}

std::string library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, std::size_t(length));
  const auto end = version.find_first_of(",\n");  // "Open MPI v4.1.4, package: ..."
  return end == std::string::npos ? version : version.substr(0, end);
}

// Calls op(offset, n) over [0, count) in pieces MPI's int counts can name.
template <typename Op>
void in_pieces(std::size_t count, Op&& op) {
  constexpr std::size_t kPiece = std::size_t(1) << 30;
  for (std::size_t offset = 0; offset < count; offset += kPiece)
    op(offset, static_cast<int>(std::min(kPiece, count - offset)));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init");
      std::atexit(finalize);
    }
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &world_), "MPI_Comm_dup");
    // Errors come back as codes (thrown as cnnrt::Error) rather than ending the process inside MPI.
    MPI_Comm_set_errhandler(world_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(world_, &rank_);
    MPI_Comm_size(world_, &size_);
    check_mpi(MPI_Comm_split_type(world_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local_),
              "MPI_Comm_split_type");
    MPI_Comm_rank(local_, &local_rank_);
    MPI_Comm_size(local_, &local_size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  void sum(float* values, std::size_t count) override { reduce(values, count, MPI_FLOAT, MPI_SUM); }
  void sum(double* values, std::size_t count) override {
    reduce(values, count, MPI_DOUBLE, MPI_SUM);
  }
  void sum(std::int64_t* values, std::size_t count) override {
    reduce(values, count, MPI_INT64_T, MPI_SUM);
  }
  void max(std::int64_t* values, std::size_t count) override {
    reduce(values, count, MPI_INT64_T, MPI_MAX);
  }
  void all_gather(const std::int64_t* mine, std::size_t count, std::int64_t* all) override {
    if (count > std::size_t(INT_MAX)) throw Error("all_gather: too many values");
    check_mpi(MPI_Allgather(mine, int(count), MPI_INT64_T, all, int(count), MPI_INT64_T, world_),
              "MPI_Allgather");
  }
  void broadcast(void* bytes, std::size_t count, int root) override {
    in_pieces(count, [&](std::size_t offset, int n) {
      check_mpi(MPI_Bcast(static_cast<char*>(bytes) + offset, n, MPI_BYTE, root, world_),
                "MPI_Bcast");
    });
  }
  void barrier() override { check_mpi(MPI_Barrier(world_), "MPI_Barrier"); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }
  std::string describe() const override {
    return fmt::format("{}, {} ranks", library_version(), size_);
  }

 private:
  static void finalize() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  template <typename T>
  void reduce(T* values, std::size_t count, MPI_Datatype type, MPI_Op op) {
    in_pieces(count, [&](std::size_t offset, int n) {
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, values + offset, n, type, op, world_), "MPI_Allreduce");
    });
  }

  MPI_Comm world_ = MPI_COMM_NULL, local_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

}  // namespace

std::shared_ptr<Communicator> launched_communicator() {
  if (!launched_as_ranks()) return nullptr;
  std::lock_guard<std::mutex> lock(communicator_mutex);
  if (!communicator) communicator = std::make_shared<MpiCommunicator>();
  return communicator;
}

std::string distributed_support() {
  return fmt::format("MPI ({})", library_version());
}

#else

std::shared_ptr<Communicator> launched_communicator() {
  if (!launched_as_ranks()) return nullptr;
  throw Error(fmt::format(
      "this process is one of {} ranks, but this build of cnnrt has no MPI support (rebuild with "
      "libopenmpi-dev installed, or run a single process)",
      launcher_ranks()));
}

std::string distributed_support() {
  return "not built in";
}

#endif

}  // namespace cnnrt
