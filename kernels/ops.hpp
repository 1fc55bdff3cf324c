#pragma once
// Shapes shared by the CPU reference kernels (kernels/cpu) and the CUDA kernels (kernels/cuda).
// Both take the same geometry structs in the same argument order, so a test can run either.
// Layout everywhere: NCHW, row-major, contiguous.
#include <cstddef>
#include <cstdint>

#include "cnnrt/activation.hpp"
#include "cnnrt/optimizer.hpp"
#include "cnnrt/shape.hpp"

namespace cnnrt {

// conv2d: in [n, c, h, w] (*) weight [k, c, kh, kw] + bias [k] -> out [n, k, out_h, out_w]
struct Conv2dGeometry {
  int n = 0, c = 0, h = 0, w = 0;  // input
  int k = 0, kh = 0, kw = 0;       // filters
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0;  // zeros before the first row/column; the rest follows from out
  int out_h = 0, out_w = 0;

  std::size_t in_size() const { return std::size_t(n) * c * h * w; }
  std::size_t weight_size() const { return std::size_t(k) * c * kh * kw; }
  std::size_t out_size() const { return std::size_t(n) * k * out_h * out_w; }
};

// Builds the geometry from the user's description; throws cnnrt::Error (naming `layer`) when the
// kernel does not fit the input.
Conv2dGeometry make_conv2d_geometry(const char* layer, int n, int c, int h, int w, int k, int kh,
                                    int kw, int stride_h, int stride_w, Padding padding);

// pool2d (max or avg, no padding): in [n, c, h, w] -> out [n, c, out_h, out_w]
struct Pool2dGeometry {
  int n = 0, c = 0, h = 0, w = 0;
  int win_h = 2, win_w = 2;
  int stride_h = 2, stride_w = 2;
  int out_h = 0, out_w = 0;

  std::size_t in_size() const { return std::size_t(n) * c * h * w; }
  std::size_t out_size() const { return std::size_t(n) * c * out_h * out_w; }
};

Pool2dGeometry make_pool2d_geometry(const char* layer, int n, int c, int h, int w, int win_h,
                                    int win_w, int stride_h, int stride_w);

// dense: in [n, in_features] x weight [out_features, in_features] (PyTorch's layout) + bias
// [out_features] -> out [n, out_features]. docs/math.md writes W[j,k] (in x out); we store its
// transpose so checkpoints carry PyTorch's shapes unchanged.
struct DenseGeometry {
  int n = 0, in_features = 0, out_features = 0;

  std::size_t in_size() const { return std::size_t(n) * in_features; }
  std::size_t weight_size() const { return std::size_t(in_features) * out_features; }
  std::size_t out_size() const { return std::size_t(n) * out_features; }
};

// batch_norm: in [n, c, plane] (plane = h * w; 1 after a dense layer, whose features are the
// channels) normalised per channel over the n * plane values of that channel (docs/math.md
// section 11).
struct BatchNormGeometry {
  int n = 0, c = 0, plane = 0;

  std::size_t size() const { return std::size_t(n) * c * plane; }
  std::size_t per_channel() const { return std::size_t(n) * plane; }  // m of docs/math.md
  // The first element of sample s's plane of channel ch.
  std::size_t plane_at(int s, int ch) const { return (std::size_t(s) * c + ch) * plane; }
};

// PyTorch's defaults: running = (1 - momentum) * running + momentum * batch statistic.
struct BatchNormParams {
  double momentum = 0.1;
  double eps = 1e-5;
};

// Dropout's mask comes from Philox4x32-10 (kernels/philox.hpp): element i of a launch draws word
// (i % 4) of philox(counter = {i / 4 low, i / 4 high, offset low, offset high}, key = seed), the
// top 24 bits as u in [0, 1); the element is kept when u >= p. CPU and GPU draw the same bits.
struct DropoutParams {
  float p = 0.5f;
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;  // advanced by the caller once per training step
  // Element i draws at first + i: a rank holding samples from s on of a global batch draws what
  // one process would for them (first = s * elements per sample).
  std::uint64_t first = 0;
};

// An activation layer fused into the op in front of it (DESIGN.md, the data path, item 6), so
// the activation costs no kernel and no pass over memory of its own. The results are the same
// bits as the op followed by activation_forward / activation_backward.
//
// Forward (convolution, dense): the op writes z to its output as before and act(z) to
// `activated`, an array of the output's shape; nullptr: nothing fused.
template <typename T>
struct FusedActivation {
  Activation kind = Activation::none;
  T leaky_slope = T(0.1);
  T* activated = nullptr;
};

// Inference (convolution, dense) with the batch norm behind the layer folded in: the layer first
// writes its weight and bias as the batch norm would scale and shift their result, per output
// channel (cpu::batch_norm_fold), to `weight` and `bias`, and multiplies with those. gamma ==
// nullptr: nothing folded.
template <typename T>
struct BatchNormFold {
  const T *gamma = nullptr, *beta = nullptr, *running_mean = nullptr, *running_var = nullptr;
  double eps = 1e-5;
  T *weight = nullptr, *bias = nullptr;
};

// Backward (pooling, dense backward-data): the op that computes the activation's output gradient
// da writes dz = activation_backward(kind, z, a, da) in its place (docs/math.md section 2). z and a
// are the activation's input and output, both of the op's din shape; z == nullptr: nothing fused.
template <typename T>
struct FusedActivationGrad {
  Activation kind = Activation::none;
  T leaky_slope = T(0.1);
  const T* z = nullptr;
  const T* a = nullptr;
};

// Normalisation applied when a uint8 batch is gathered, per channel: value p of a sample is in
// channel c = p / plane (c = 0 when channels == 1) and becomes x = (byte / 255 - mean[c]) / std[c].
// One channel with any plane: the same mean and std for every value.
struct NormalizeParams {
  static constexpr int kMaxChannels = 16;
  int channels = 1;
  int plane = 1;  // values per channel (h * w); read only when channels > 1
  float mean[kMaxChannels] = {};
  float std[kMaxChannels] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

  constexpr NormalizeParams() = default;
  // The same mean and std for every value.
  constexpr NormalizeParams(float m, float s) {
    mean[0] = m;
    std[0] = s;
  }
};

// Throws cnnrt::Error (naming `where`) unless `norm` fits samples of `pixels` values: channels in
// [1, kMaxChannels], channels * plane == pixels when channels > 1, every std non-zero.
void check_normalize(const char* where, const NormalizeParams& norm, int pixels);

// Augmentation applied in the same gather (docs/math.md, augmentation), per sample of the batch:
// a random crop of the image padded by `pad` zero bytes on each side (a shift dx, dy uniform in
// [-pad, pad]) and, with `flip`, a horizontal mirror with probability 1/2. The draws come from
// Philox4x32-10 (kernels/philox.hpp): counter = {dataset sample index, batch in the epoch, epoch,
// kAugmentStream}, key = seed; word 0 gives dx, word 1 dy, word 2 the flip. Keyed on the sample,
// not on its batch position, so CPU and CUDA draw the same bits in any thread order.
// out[c][y][x] = in[c][y + dy][xs + dx] (0 outside), xs = flip ? w - 1 - x : x. `mirror` flips
// every sample, no draw (test-time augmentation).
struct AugmentParams {
  int pad = 0;                              // 0: no crop
  bool flip = false;                        // random horizontal flips
  bool mirror = false;                      // every sample flipped
  int channels = 0, height = 0, width = 0;  // the sample's shape; pixels = c * h * w
  std::uint64_t seed = 0;
  // The stream position for gather_batch; gather_batch_at_step reads both from its counter.
  std::uint32_t step = 0, epoch = 0;

  bool enabled() const { return pad > 0 || flip || mirror; }
};

// Throws cnnrt::Error (naming `where`) unless the augmentation fits samples of `pixels` values.
void check_augment(const char* where, const AugmentParams& aug, int pixels);

// The fourth counter word of the augmentation stream (dropout's is the high word of its offset).
inline constexpr std::uint32_t kAugmentStream = 0x41554721u;

}  // namespace cnnrt
