#pragma once
// Data-parallel training over several processes (ranks), each holding the whole model and taking
// its slice of every global batch; gradients are summed across ranks before each update, so every
// rank takes the same step. The processes come from an MPI launcher (mpirun, mpiexec, srun); the
// sums are MPI's (docs/distributed.md).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/export.hpp"

namespace cnnrt {

// The processes of one training job. Every call is collective: each rank makes the same calls in
// the same order. Sums give every rank the same bits.
class CNNRT_API Communicator {
 public:
  virtual ~Communicator();
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // This rank's index among the ranks on its machine (the GPU it takes), and how many there are.
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  // In place, over all ranks.
  virtual void sum(float* values, std::size_t count) = 0;
  virtual void sum(double* values, std::size_t count) = 0;
  virtual void sum(std::int64_t* values, std::size_t count) = 0;
  virtual void max(std::int64_t* values, std::size_t count) = 0;
  // all: [size, count], rank r's `mine` at row r.
  virtual void all_gather(const std::int64_t* mine, std::size_t count, std::int64_t* all) = 0;
  virtual void broadcast(void* bytes, std::size_t count, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job now with exit status `code`: for an error on one rank, which would
  // otherwise leave the others waiting in a collective call.
  [[noreturn]] virtual void abort(int code) = 0;
  // "Open MPI v4.1.4, 2 ranks"
  virtual std::string describe() const = 0;
};

// An error every rank raises alike at the same point (ranks that disagree on their options): the
// front end reports it once, from rank 0, and ends each rank normally.
class CNNRT_API CollectiveError : public Error {
 public:
  explicit CollectiveError(const std::string& message);
  ~CollectiveError() override;
};

// The samples [begin, end) of a batch of `batch` that rank `rank` of `ranks` takes: contiguous,
// disjoint, covering the batch, sizes differing by at most one.
struct CNNRT_API RankSlice {
  int begin = 0, end = 0;
  int count() const { return end - begin; }
};
CNNRT_API RankSlice rank_slice(int batch, int rank, int ranks);

// Rank `rank`'s part of an epoch's sample order (every rank shuffles the same order) at a global
// batch of `batch`: its rank_slice of each full batch, step after step, then its slice of the last,
// partial batch.
CNNRT_API std::vector<std::int32_t> shard_epoch_order(const std::vector<std::int32_t>& order,
                                                      int batch, int rank, int ranks);

// A value every rank must share, named for the error: {"batch size", 256}.
using RankSetting = std::pair<std::string, std::int64_t>;
// Collective: throws CollectiveError on every rank, naming the first setting some rank holds
// otherwise and the values of rank 0 and of the first rank that differs.
CNNRT_API void check_ranks_agree(Communicator& ranks, const std::vector<RankSetting>& settings);
// A 63-bit FNV-1a hash of text, the same on every machine (for settings that are strings).
CNNRT_API std::int64_t setting_hash(const std::string& text);

// Collective: the milliseconds one gradient sum of `count` floats takes over the ranks (the
// slowest rank's time of each repeat, after a barrier), the median of `repeats` after `warmup`
// untimed ones.
CNNRT_API double time_gradient_sum(Communicator& ranks, std::size_t count, int warmup, int repeats);

// `ranks` when it holds more than one rank, nullptr otherwise (a run of one process).
inline Communicator* several_ranks(const std::shared_ptr<Communicator>& ranks) {
  return ranks && ranks->size() > 1 ? ranks.get() : nullptr;
}

// Whether a launcher started this process as one of several ranks (its environment says so).
CNNRT_API bool launched_as_ranks();
// The job's communicator when launched_as_ranks(), nullptr otherwise; initialises MPI on the
// first call and finalises it at exit. Throws cnnrt::Error when this build has no MPI support.
CNNRT_API std::shared_ptr<Communicator> launched_communicator();
// The communicator launched_communicator() made, nullptr before or without one.
CNNRT_API std::shared_ptr<Communicator> active_communicator();
// What was built in: "MPI (Open MPI v4.1.4)" or "not built in".
CNNRT_API std::string distributed_support();

}  // namespace cnnrt
