#pragma once
// Image folders as data sets: DIR/train/<class>/* and DIR/test/<class>/*, or one DIR/<class>/*
// tree split into train and test by a seeded draw. Each image is decoded (include/cnnrt/image.hpp:
// PNG, JPEG, BMP, grey or colour), converted to the model's channel count and fitted to its input
// size once, at load time, into the same uint8 CHW bytes the IDX and CIFAR loaders give.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/export.hpp"

namespace cnnrt {

struct CNNRT_API ImageFolderOptions {
  int channels = 3, height = 32, width = 32;  // what every image becomes
  // 0: DIR holds train/ and test/; in (0, 1): DIR holds the class folders, and this share of each
  // class (rounded, at least one image when the class has two or more) becomes the test split.
  double test_split = 0;
  std::uint64_t seed = 1;  // the split's draw
  int threads = 0;         // decoding threads (0: all cores)
  // Called on the calling thread while images decode: done of total.
  std::function<void(int done, int total)> progress;
  // Where each split's decoded samples are kept for later runs: "" for DIR/.cnnrt-cache/, a
  // folder (one sub-folder per image folder, named after it), or "none" for no cache.
  std::string cache;
};

struct CNNRT_API ImageFolderData {
  Dataset train, test;  // each with class_names set; a split not asked for is empty
  int skipped = 0;      // files that are not images (by extension), hidden files, folders
  int decoded = 0;      // images decoded (0 when every split asked for came from its cache)
  int cached = 0;       // images read from a cache instead
  double seconds = 0;   // listing, decoding, reading and writing caches
  // Per split asked for: its cache file (empty with cache "none"), and what became of it:
  // "read", "written", "off" or "not written: <reason>" (a read-only folder, a full disk).
  struct Cache {
    std::string path, status;
  };
  Cache train_cache, test_cache;
};

// One image file as a sample of the data set: decoded to `channels`, fitted to height x width
// (decode_image, fit_image), as [channels, height, width] bytes. Errors name the file.
CNNRT_API std::vector<std::uint8_t> load_image_sample(const std::string& path, int channels,
                                                      int height, int width);

// The file extensions read as images, lower-case: .png .jpg .jpeg .bmp .gif .tga .ppm .pgm.
// Anything else in a class folder (README, .DS_Store) is skipped and counted.
CNNRT_API bool is_image_file_name(const std::string& name);

// True when `dir` looks like an image folder: it holds train/ with sub-folders, or only
// sub-folders (class folders) and no IDX or CIFAR files.
CNNRT_API bool looks_like_image_folder(const std::string& dir);

// Lists, splits and decodes, or reads a split from its cache (host/image_cache.hpp: the samples,
// under a checksum of each file's path, label, size and modification time and of the options).
// A split whose files changed is decoded again and its cache rewritten; a cache file that is
// damaged (truncated, not a cache) or names another folder is an error saying to remove it.
// A split with a cache (read, or just written) keeps its images in the mapped file
// (Dataset::mapped_images); the file must not be truncated while the data set lives (cnnrt
// replaces a cache by renaming a new file over it, which leaves a mapping intact). Class names are
// the sorted folder names (of train/ with train and test folders: test/ may lack a class but may
// not add one). Throws cnnrt::Error "<path>: <what>" for an unreadable or undecodable image (a
// truncated or corrupt PNG or JPEG, a text file named .png, a 0-byte file), an empty class folder,
// fewer than two classes, no images at all, more than 256 classes, or a test split that comes out
// empty.
CNNRT_API ImageFolderData load_image_folder(const std::string& dir,
                                            const ImageFolderOptions& options, bool want_train,
                                            bool want_test);

}  // namespace cnnrt
