// Seconds from the gzipped IDX files of a data set to its resident bytes: load_mnist_split of the
// training and the test split, one after the other. Built and run by tools/bench/idx_load_time.sh.
#include <chrono>
#include <cstdio>

#include "cnnrt/dataset.hpp"

int main(int argc, char** argv) {
  const char* dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const auto start = std::chrono::steady_clock::now();
  const cnnrt::Dataset train = cnnrt::load_mnist_split(dir, true, 10);
  const cnnrt::Dataset test = cnnrt::load_mnist_split(dir, false, 10);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.4f s, %d + %d images\n", seconds, train.count, test.count);
}
