// Image folders -> Dataset (include/cnnrt/image_folder.hpp): list, split, decode in parallel.
#include "cnnrt/image_folder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include "cnnrt/distributed.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/image.hpp"
#include "host/file_bytes.hpp"
#include "host/image_cache.hpp"
#include "host/worker_pool.hpp"

namespace cnnrt {

namespace fs = std::filesystem;

namespace {

// Far above any photo; a larger file is refused before it is read.
constexpr std::uint64_t kMaxImageFileBytes = 1ull << 30;
constexpr int kMaxClasses = 256;  // labels are bytes

struct ImageFile {
  std::string path;
  int label = 0;
};

std::string lowercase(std::string text) {
  for (char& c : text) c = char(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool is_folder(const fs::path& p) {
  std::error_code ignored;
  return fs::is_directory(p, ignored);
}

// The entries of `dir`, sorted by name (byte order, the same on every system).
std::vector<fs::directory_entry> sorted_entries(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw Error(fmt::format("{}: cannot list the folder: {}", dir.string(), ec.message()));
  std::vector<fs::directory_entry> entries;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) throw Error(fmt::format("{}: cannot list the folder: {}", dir.string(), ec.message()));
    entries.push_back(*it);
  }
  std::sort(entries.begin(), entries.end(),
            [](const fs::directory_entry& a, const fs::directory_entry& b) {
              return a.path().filename().string() < b.path().filename().string();
            });
  return entries;
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() &&
         text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// The class folders of `dir` (sorted, hidden ones skipped) and the files skipped beside them.
std::vector<std::string> class_folders(const fs::path& dir, int* skipped) {
  std::vector<std::string> names;
  for (const fs::directory_entry& e : sorted_entries(dir)) {
    if (!hidden(e.path()) && is_folder(e.path()))
      names.push_back(e.path().filename().string());
    else
      ++*skipped;
  }
  return names;
}

// The image files of one class folder, sorted; an empty class is an error.
std::vector<std::string> class_images(const fs::path& folder, int* skipped) {
  std::vector<std::string> files;
  for (const fs::directory_entry& e : sorted_entries(folder)) {
    const std::string name = e.path().filename().string();
    std::error_code ignored;
    if (!hidden(e.path()) && is_image_file_name(name) && !e.is_directory(ignored))
      files.push_back(e.path().string());
    else
      ++*skipped;
  }
  if (files.empty())
    throw Error(fmt::format("{}: empty class folder (no .png, .jpg, .jpeg or .bmp images)",
                            folder.string()));
  return files;
}

void check_classes(const fs::path& dir, const std::vector<std::string>& classes) {
  if (classes.empty())
    throw Error(
        fmt::format("{}: no images (no class folders: expected {}/<class>/*.png, or "
                    "train/<class>/ and test/<class>/)",
                    dir.string(), dir.string()));
  if (classes.size() == 1)
    throw Error(fmt::format("{}: only one class folder ('{}'); a classifier needs at least two",
                            dir.string(), classes[0]));
  if (classes.size() > std::size_t(kMaxClasses))
    throw Error(fmt::format("{}: {} class folders, more than the {} supported", dir.string(),
                            classes.size(), kMaxClasses));
}

// SplitMix64: the split's draw, the same bits on every platform (std::shuffle's are not).
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Decodes `files` into `out` ([count, C, H, W] bytes, labels), in parallel; the first file (in
// list order) that fails is the error, whichever thread met it.
void decode_all(const std::vector<ImageFile>& files, const ImageFolderOptions& o, Dataset* out,
                int done_before, int total) {
  const int c = o.channels, h = o.height, w = o.width;
  const std::size_t sample = std::size_t(c) * std::size_t(h) * std::size_t(w);
  out->count = int(files.size());
  out->channels = c, out->height = h, out->width = w;
  out->images.assign(files.size() * sample, 0);
  out->labels.resize(files.size());
  std::vector<std::string> errors(files.size());
  std::atomic<std::size_t> next{0};
  std::atomic<int> done{0};
  std::atomic<bool> failed{false};
  const int threads =
      o.threads > 0 ? o.threads : std::max(1, int(std::thread::hardware_concurrency()));
  WorkerPool pool(std::min<int>(threads, std::max<int>(1, int(files.size()))));
  pool.run(pool.threads(), [&](int task) {
    while (!failed.load(std::memory_order_relaxed)) {
      const std::size_t i = next.fetch_add(1);
      if (i >= files.size()) break;
      try {
        const std::vector<std::uint8_t> planes = load_image_sample(files[i].path, c, h, w);
        std::copy(planes.begin(), planes.end(), out->images.begin() + std::ptrdiff_t(i * sample));
        out->labels[i] = std::uint8_t(files[i].label);
      } catch (const std::exception& e) {
        errors[i] = e.what();
        failed.store(true);
      }
      const int finished = done.fetch_add(1) + 1;
      if (task == 0 && o.progress && finished % 64 == 0) o.progress(done_before + finished, total);
    }
  });
  // The last report from here: the thread that finished last may not be task 0.
  if (o.progress && !failed.load()) o.progress(done_before + int(files.size()), total);
  // Work is taken in list order, so every file before a failed one was attempted.
  for (const std::string& e : errors)
    if (!e.empty()) throw Error(e);
}

// The split's cache file: DIR/.cnnrt-cache/<split>-<C>x<H>x<W>[-split<S>-seed<N>].cache, or the
// same name under <cache>/<folder name>-<hash of its absolute path>/.
fs::path cache_file(const fs::path& root, const std::string& split, const ImageFolderOptions& o) {
  std::string name = fmt::format("{}-{}x{}x{}", split, o.channels, o.height, o.width);
  if (o.test_split > 0) name += fmt::format("-split{:g}-seed{}", o.test_split, o.seed);
  name += ".cache";
  if (o.cache.empty()) return root / ".cnnrt-cache" / name;
  const std::string folder =
      fmt::format("{}-{:08x}", root.filename().string(),
                  std::uint64_t(setting_hash(root.string())) & 0xffffffffull);
  return fs::path(o.cache) / folder / name;
}

// What the split's samples depend on: the options that shape them, the classes, and each file's
// path (relative to the folder, `root` absolute), label, size and modification time.
std::uint64_t source_checksum(const fs::path& root, const std::vector<ImageFile>& files,
                              const std::vector<std::string>& classes,
                              const ImageFolderOptions& o) {
  std::string text = fmt::format("cnnrt image cache 1\n{} {} {}\n", o.channels, o.height, o.width);
  if (o.test_split > 0) text += fmt::format("split {:.17g} seed {}\n", o.test_split, o.seed);
  for (const std::string& c : classes) text += c + '\n';
  for (const ImageFile& f : files) {
    // A file that cannot be asked (gone since the listing) fails its decode instead.
    std::error_code size_error, time_error;
    const std::uintmax_t size = fs::file_size(f.path, size_error);
    const auto when = fs::last_write_time(f.path, time_error).time_since_epoch().count();
    const fs::path relative = fs::absolute(f.path).lexically_normal().lexically_relative(root);
    text += fmt::format("{}\n{} {} {}\n", relative.string(), f.label,
                        size_error ? 0 : std::uint64_t(size), time_error ? 0 : std::int64_t(when));
  }
  return std::uint64_t(setting_hash(text));
}

// The split from its cache when the cache holds exactly these sources; false when there is no
// cache file or it is stale. A damaged cache, or one of another folder, throws.
bool read_cache(const fs::path& path, const fs::path& root, std::uint64_t sources,
                const std::vector<std::string>& classes, const ImageFolderOptions& o,
                Dataset* out) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  const auto file = std::make_shared<const MappedFile>(path.string());
  const ImageCacheHeader h = parse_image_cache(file->data(), file->size(), path.string());
  if (h.root != root.string())
    throw Error(fmt::format("{}: image cache of the folder {}, not {} (remove it to rebuild)",
                            path.string(), h.root, root.string()));
  if (h.sources != std::uint64_t(sources) || h.channels != o.channels || h.height != o.height ||
      h.width != o.width || h.class_names != classes)
    return false;
  const std::size_t images = std::size_t(h.count) * h.channels * h.height * h.width;
  out->count = h.count;
  out->channels = h.channels, out->height = h.height, out->width = h.width;
  // The images stay in the mapping (read as they are touched); the labels are copied.
  out->images = {};
  out->mapped_images = std::shared_ptr<const std::uint8_t>(file, file->data() + h.header_bytes);
  out->labels.assign(file->data() + h.header_bytes + images,
                     file->data() + h.header_bytes + images + h.count);
  return true;
}

// The split from its cache, or decoded (and the cache written); `cache` says which.
void load_split(const fs::path& root, const std::vector<ImageFile>& files, const char* split,
                const std::vector<std::string>& classes, const ImageFolderOptions& o,
                int done_before, int total, Dataset* out, ImageFolderData::Cache* cache,
                int* decoded, int* cached) {
  const bool use_cache = o.cache != "none";
  const fs::path path = use_cache ? cache_file(root, split, o) : fs::path();
  const std::uint64_t sources = use_cache ? source_checksum(root, files, classes, o) : 0;
  cache->path = path.string();
  if (use_cache && read_cache(path, root, sources, classes, o, out)) {
    cache->status = "read";
    *cached += out->count;
    if (o.progress) o.progress(done_before + out->count, total);
    return;
  }
  decode_all(files, o, out, done_before, total);
  *decoded += int(files.size());
  if (!use_cache) {
    cache->status = "off";
    return;
  }
  out->classes = int(classes.size());
  out->class_names = classes;
  try {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      throw Error(fmt::format("{}: cannot create: {}", path.parent_path().string(), ec.message()));
    const std::string header = image_cache_header(root.string(), sources, *out);
    write_file_via_temporary(
        path.string(),
        {header,
         std::string_view(reinterpret_cast<const char*>(out->images.data()), out->images.size()),
         std::string_view(reinterpret_cast<const char*>(out->labels.data()), out->labels.size())},
        Temporary::per_process);  // ranks of one run may write the same cache at once
    cache->status = "written";
  } catch (const Error& e) {
    cache->status = std::string("not written: ") + e.what();
    return;
  }
  // From the file just written, as a later run would, letting the decoded copy go; on a failure
  // the copy serves.
  try {
    read_cache(path, root, sources, classes, o, out);
  } catch (const Error&) {
  }
}

}  // namespace

std::vector<std::uint8_t> load_image_sample(const std::string& path, int channels, int height,
                                            int width) {
  const std::vector<std::uint8_t> bytes =
      read_file_bytes(path, kMaxImageFileBytes, "an image file");
  const ByteImage fitted =
      fit_image(decode_image(bytes.data(), bytes.size(), path, channels), width, height);
  const std::size_t plane = std::size_t(height) * std::size_t(width);
  std::vector<std::uint8_t> planes(plane * std::size_t(channels));
  for (std::size_t p = 0; p < plane; ++p)  // HWC -> CHW
    for (int k = 0; k < channels; ++k)
      planes[std::size_t(k) * plane + p] =
          fitted.pixels[p * std::size_t(channels) + std::size_t(k)];
  return planes;
}

bool is_image_file_name(const std::string& name) {
  const std::string ext = lowercase(fs::path(name).extension().string());
  for (const char* known : {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".ppm", ".pgm"})
    if (ext == known) return true;
  return false;
}

bool looks_like_image_folder(const std::string& dir) {
  const fs::path d(dir);
  if (!is_folder(d)) return false;
  if (is_folder(d / "train")) return true;
  bool any_folder = false;
  std::error_code ec;
  for (fs::directory_iterator it(d, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find("idx") != std::string::npos || ends_with(lowercase(name), ".bin"))
      return false;  // IDX or CIFAR files
    if (!hidden(it->path()) && is_folder(it->path())) any_folder = true;
  }
  return any_folder;
}

ImageFolderData load_image_folder(const std::string& dir, const ImageFolderOptions& o,
                                  bool want_train, bool want_test) {
  const auto start = std::chrono::steady_clock::now();
  if (o.channels != 1 && o.channels != 3)
    throw Error(
        fmt::format("{}: image folders give 1 (grey) or 3 (RGB) channels; the model "
                    "takes {}",
                    dir, o.channels));
  if (o.height < 1 || o.width < 1)
    throw Error(fmt::format("{}: input size {}x{} is not an image size", dir, o.height, o.width));
  if (!(o.test_split >= 0 && o.test_split < 1))
    throw Error(fmt::format("test split {} must be in [0, 1)", o.test_split));
  const fs::path root(dir);
  if (!is_folder(root)) throw Error(fmt::format("{}: not a folder", dir));
  ImageFolderData result;
  std::vector<ImageFile> train, test;
  std::vector<std::string> classes;
  const bool split_folders = o.test_split == 0;
  if (split_folders) {
    if (!is_folder(root / "train") || !is_folder(root / "test"))
      throw Error(
          fmt::format("{}: no train/ and test/ folders (for one tree of class folders, "
                      "give a test split)",
                      dir));
    int ignored = 0;
    classes = class_folders(root / "train", &result.skipped);
    check_classes(root / "train", classes);
    const std::vector<std::string> test_classes = class_folders(root / "test", &ignored);
    result.skipped += ignored;
    for (const std::string& name : test_classes)
      if (!std::binary_search(classes.begin(), classes.end(), name))
        throw Error(fmt::format("{}: class '{}' is not among the {} classes of {}",
                                (root / "test" / name).string(), name, classes.size(),
                                (root / "train").string()));
    for (int label = 0; label < int(classes.size()); ++label) {
      for (std::string& f :
           class_images(root / "train" / classes[std::size_t(label)], &result.skipped))
        train.push_back({std::move(f), label});
      const fs::path test_folder = root / "test" / classes[std::size_t(label)];
      if (is_folder(test_folder))
        for (std::string& f : class_images(test_folder, &result.skipped))
          test.push_back({std::move(f), label});
    }
  } else {
    classes = class_folders(root, &result.skipped);
    check_classes(root, classes);
    for (int label = 0; label < int(classes.size()); ++label) {
      std::vector<std::string> files =
          class_images(root / classes[std::size_t(label)], &result.skipped);
      const int n = int(files.size());
      // A seeded Fisher-Yates shuffle of the class's indices; the first k go to test.
      std::vector<int> order(static_cast<std::size_t>(n));
      for (int i = 0; i < n; ++i) order[std::size_t(i)] = i;
      std::uint64_t state = o.seed ^ (0xC1A55ull * std::uint64_t(label + 1));
      for (int i = n - 1; i > 0; --i)
        std::swap(order[std::size_t(i)],
                  order[std::size_t(splitmix64(state) % std::uint64_t(i + 1))]);
      int k = int(std::lround(o.test_split * n));
      if (n >= 2)
        k = std::clamp(k, 1, n - 1);
      else
        k = 0;
      std::vector<bool> in_test(static_cast<std::size_t>(n), false);
      for (int i = 0; i < k; ++i) in_test[std::size_t(order[std::size_t(i)])] = true;
      for (int i = 0; i < n; ++i)
        (in_test[std::size_t(i)] ? test : train).push_back({files[std::size_t(i)], label});
    }
  }
  if (want_test && test.empty())
    throw Error(fmt::format("{}: the test split holds no images",
                            split_folders ? (root / "test").string() : dir));
  const int total = (want_train ? int(train.size()) : 0) + (want_test ? int(test.size()) : 0);
  fs::path absolute = fs::absolute(root).lexically_normal();
  if (absolute.filename().empty()) absolute = absolute.parent_path();  // "photos/"
  if (want_train)
    load_split(absolute, train, "train", classes, o, 0, total, &result.train, &result.train_cache,
               &result.decoded, &result.cached);
  if (want_test)
    load_split(absolute, test, "test", classes, o, want_train ? int(train.size()) : 0, total,
               &result.test, &result.test_cache, &result.decoded, &result.cached);
  for (Dataset* d : {&result.train, &result.test}) {
    d->classes = int(classes.size());
    d->class_names = classes;
    d->channels = o.channels, d->height = o.height, d->width = o.width;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace cnnrt
