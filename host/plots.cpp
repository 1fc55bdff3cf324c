// Training pictures drawn by hand into an RGB buffer (no plotting library): lines, boxes and a
// 5x7 bitmap font, written through write_rgb_png.
#include "cnnrt/plots.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "cnnrt/error.hpp"
#include "cnnrt/image.hpp"

namespace cnnrt {
namespace {

using Rgb = std::array<std::uint8_t, 3>;
constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kGridGrey{225, 225, 225};
constexpr Rgb kFrameGrey{90, 90, 90};

// 5x7 glyphs, one byte per row, bit 4 the leftmost column.
struct Glyph {
  char ch;
  std::uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}},
    {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
    {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
};
constexpr int kGlyphW = 5, kGlyphH = 7, kGlyphAdvance = 6;

const Glyph& glyph_for(char ch) {
  const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  for (const Glyph& g : kFont)
    if (g.ch == upper) return g;
  for (const Glyph& g : kFont)
    if (g.ch == '?') return g;
  return kFont[0];
}

class Canvas {
 public:
  Canvas(int width, int height, Rgb background)
      : width_(width), height_(height), rgb_(std::size_t(width) * height * 3) {
    fill_rect(0, 0, width, height, background);
  }
  int width() const { return width_; }
  int height() const { return height_; }

  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;  // clipped
    std::uint8_t* p = &rgb_[(std::size_t(y) * width_ + x) * 3];
    p[0] = c[0];
    p[1] = c[1];
    p[2] = c[2];
  }
  void fill_rect(int x0, int y0, int w, int h, Rgb c) {
    for (int y = y0; y < y0 + h; ++y)
      for (int x = x0; x < x0 + w; ++x) set(x, y, c);
  }
  // Bresenham, with a square brush of side `thickness`.
  void line(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1) {
    const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    const int lo = -(thickness - 1) / 2;
    for (;;) {
      fill_rect(x0 + lo, y0 + lo, thickness, thickness, c);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  // Text with its top-left corner at (x, y); each font pixel becomes scale x scale.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1) {
    for (char ch : s) {
      const Glyph& g = glyph_for(ch);
      for (int row = 0; row < kGlyphH; ++row)
        for (int col = 0; col < kGlyphW; ++col)
          if (g.rows[row] & (0x10 >> col))
            fill_rect(x + col * scale, y + row * scale, scale, scale, c);
      x += kGlyphAdvance * scale;
    }
  }
  static int text_width(const std::string& s, int scale = 1) {
    return s.empty() ? 0 : (int(s.size()) * kGlyphAdvance - 1) * scale;
  }
  void save(const std::string& path) const { write_rgb_png(path, width_, height_, rgb_); }
  ByteImage image() const { return ByteImage{width_, height_, 3, rgb_}; }

 private:
  int width_, height_;
  std::vector<std::uint8_t> rgb_;
};

// A value in [lo, hi] as a grey level (lo black, hi white); a constant map is mid grey.
Rgb grey(float v, float lo, float hi) {
  const float t = hi > lo ? (v - lo) / (hi - lo) : 0.5f;
  const auto level = static_cast<std::uint8_t>(std::lround(std::clamp(t, 0.0f, 1.0f) * 255.0f));
  return Rgb{level, level, level};
}

// values[0..count) as an h x w map drawn at (x0, y0), each value a scale x scale block.
void draw_map(Canvas& canvas, int x0, int y0, const float* values, int h, int w, int scale) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int i = 0; i < h * w; ++i)
    if (std::isfinite(values[i])) {
      lo = std::min(lo, values[i]);
      hi = std::max(hi, values[i]);
    }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float v = values[y * w + x];
      canvas.fill_rect(x0 + x * scale, y0 + y * scale, scale, scale,
                       std::isfinite(v) ? grey(v, lo, hi) : Rgb{255, 0, 255});
    }
}

std::string tick_label(double v) {
  return fmt::format("{:.3g}", v);
}

}  // namespace

void write_line_chart(const std::string& path, const std::string& title,
                      const std::vector<PlotSeries>& series, int first_epoch) {
  std::size_t points = 0;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const PlotSeries& s : series) {
    points = std::max(points, s.values.size());
    for (double v : s.values)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  }
  if (points == 0 || !std::isfinite(lo))
    throw Error(fmt::format("{}: chart '{}' has no finite values to plot", path, title));
  if (hi - lo < 1e-12) {  // a flat line still gets a visible range
    lo -= 0.5;
    hi += 0.5;
  } else {
    const double margin = 0.05 * (hi - lo);
    lo -= margin;
    hi += margin;
  }

  constexpr int kWidth = 480, kHeight = 320;
  // The bottom margin holds the epoch numbers, the axis name and, below them, the legend.
  constexpr int kLeft = 56, kRight = 16, kTop = 30, kBottom = 46;
  const int plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  Canvas canvas(kWidth, kHeight, kWhite);
  canvas.text((kWidth - Canvas::text_width(title, 2)) / 2, 6, title, kBlack, 2);

  // Point i at epoch first_epoch + i, spread across the plot area (a single point sits in the
  // middle).
  auto px = [&](std::size_t i) {
    return points == 1 ? kLeft + plot_w / 2
                       : kLeft + int(std::lround(double(i) * plot_w / double(points - 1)));
  };
  auto py = [&](double v) { return kTop + int(std::lround((hi - v) / (hi - lo) * plot_h)); };

  for (int k = 0; k <= 4; ++k) {  // horizontal grid lines with their values
    const double v = lo + (hi - lo) * k / 4.0;
    const int y = py(v);
    canvas.line(kLeft, y, kLeft + plot_w, y, kGridGrey);
    const std::string label = tick_label(v);
    canvas.text(kLeft - 4 - Canvas::text_width(label), y - kGlyphH / 2, label, kFrameGrey);
  }
  canvas.line(kLeft, kTop, kLeft, kTop + plot_h, kFrameGrey);
  canvas.line(kLeft, kTop + plot_h, kLeft + plot_w, kTop + plot_h, kFrameGrey);
  const std::size_t x_ticks = std::min<std::size_t>(points, 10);
  for (std::size_t t = 0; t < x_ticks; ++t) {  // epoch numbers, at most ten of them
    const std::size_t i = x_ticks == 1 ? 0 : t * (points - 1) / (x_ticks - 1);
    const std::string label = std::to_string(std::int64_t(i) + first_epoch);
    canvas.line(px(i), kTop + plot_h, px(i), kTop + plot_h + 3, kFrameGrey);
    canvas.text(px(i) - Canvas::text_width(label) / 2, kTop + plot_h + 6, label, kFrameGrey);
  }
  const std::string x_label = "epoch";
  canvas.text(kLeft + (plot_w - Canvas::text_width(x_label)) / 2, kTop + plot_h + 18, x_label,
              kBlack);

  for (const PlotSeries& s : series) {
    bool have_previous = false;
    int prev_x = 0, prev_y = 0;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      if (!std::isfinite(s.values[i])) {
        have_previous = false;
        continue;
      }
      const int x = px(i), y = py(s.values[i]);
      if (have_previous) canvas.line(prev_x, prev_y, x, y, s.rgb, 2);
      canvas.fill_rect(x - 2, y - 2, 5, 5, s.rgb);
      prev_x = x;
      prev_y = y;
      have_previous = true;
    }
  }

  // Legend, one row under the axis, centred: outside the plot, so it hides no point. Each colour
  // key sits just before its name.
  constexpr int kKeyW = 10, kKeyGap = 3, kEntryGap = 16;
  int legend_w = 0;
  for (const PlotSeries& s : series)
    legend_w += kKeyW + kKeyGap + Canvas::text_width(s.name) + kEntryGap;
  legend_w -= kEntryGap;
  int legend_x = std::max(0, kLeft + (plot_w - legend_w) / 2);
  const int legend_y = kHeight - 12;
  for (const PlotSeries& s : series) {
    canvas.fill_rect(legend_x, legend_y + 1, kKeyW, 5, s.rgb);
    canvas.text(legend_x + kKeyW + kKeyGap, legend_y, s.name, kBlack);
    legend_x += kKeyW + kKeyGap + Canvas::text_width(s.name) + kEntryGap;
  }
  canvas.save(path);
}

ByteImage draw_kernel_grid(const std::string& title, const std::vector<float>& weights, int k,
                           int c, int kh, int kw) {
  if (k <= 0 || c <= 0 || kh <= 0 || kw <= 0 ||
      weights.size() != std::size_t(k) * std::size_t(c) * std::size_t(kh) * std::size_t(kw))
    throw Error(fmt::format("kernel grid '{}' [{}, {}, {}, {}] needs {} weights, got {}", title, k,
                            c, kh, kw, std::int64_t(k) * c * kh * kw, weights.size()));
  // Each kernel about 48 pixels on its longer side; columns are filters, rows input channels.
  const int scale = std::max(1, 48 / std::max(kh, kw));
  constexpr int kGap = 6, kMargin = 10, kTitleH = 28;
  const int cell_w = kw * scale, cell_h = kh * scale;
  const int grid_w = k * cell_w + (k - 1) * kGap, grid_h = c * cell_h + (c - 1) * kGap;
  const int width = std::max(grid_w + 2 * kMargin, Canvas::text_width(title, 2) + 2 * kMargin);
  const int height = kTitleH + grid_h + kMargin;
  Canvas canvas(width, height, kWhite);
  canvas.text((width - Canvas::text_width(title, 2)) / 2, 6, title, kBlack, 2);
  const int x0 = (width - grid_w) / 2;
  for (int ci = 0; ci < c; ++ci)
    for (int ki = 0; ki < k; ++ki) {
      const float* kernel = weights.data() + (std::size_t(ki) * c + ci) * kh * kw;
      draw_map(canvas, x0 + ki * (cell_w + kGap), kTitleH + ci * (cell_h + kGap), kernel, kh, kw,
               scale);
    }
  return canvas.image();
}

std::optional<KernelPicture> draw_first_convolution(const Model& model, int max_kernels) {
  for (const LayerSpec& layer : model.network().layers()) {
    if (layer.type != "conv2d") continue;
    const ParameterInfo& info = model.parameter_info(layer.name + ".weight");
    const int k = int(info.shape[0]), c = int(info.shape[1]);
    const int kh = int(info.shape[2]), kw = int(info.shape[3]);
    const int shown = std::clamp(max_kernels, 1, k);
    std::vector<float> weights = model.parameter(info.name);
    weights.resize(std::size_t(shown) * c * kh * kw);  // filters are outermost
    const std::string title = shown < k ? fmt::format("{} (first {} of {})", info.name, shown, k)
                                        : fmt::format("{} [{},{},{},{}]", info.name, k, c, kh, kw);
    return KernelPicture{info.name, draw_kernel_grid(title, weights, shown, c, kh, kw)};
  }
  return std::nullopt;
}

void write_kernel_grid(const std::string& path, const std::string& title,
                       const std::vector<float>& weights, int k, int c, int kh, int kw) {
  const ByteImage grid = draw_kernel_grid(title, weights, k, c, kh, kw);
  write_rgb_png(path, grid.width, grid.height, grid.pixels);
}

void write_feature_maps(const std::string& path, const std::string& title,
                        const std::vector<FeatureMapRow>& rows) {
  if (rows.empty()) throw Error(fmt::format("{}: no feature maps to draw", path));
  constexpr int kCell = 56, kGap = 4, kMargin = 10, kTitleH = 28, kLabelH = 12;
  int columns = 1;
  for (const FeatureMapRow& r : rows) {
    if (r.channels <= 0 || r.height <= 0 || r.width <= 0 ||
        r.values.size() != std::size_t(r.channels) * r.height * r.width)
      throw Error(fmt::format("{}: row '{}' is [{}, {}, {}] but holds {} values", path, r.label,
                              r.channels, r.height, r.width, r.values.size()));
    columns = std::max(columns, r.channels);
  }
  const int width = std::max(columns * (kCell + kGap) - kGap + 2 * kMargin,
                             Canvas::text_width(title, 2) + 2 * kMargin);
  const int height = kTitleH + int(rows.size()) * (kLabelH + kCell + kGap) + kMargin;
  Canvas canvas(width, height, kWhite);
  canvas.text((width - Canvas::text_width(title, 2)) / 2, 6, title, kBlack, 2);
  int y = kTitleH;
  for (const FeatureMapRow& r : rows) {
    canvas.text(kMargin, y, r.label, kBlack);
    y += kLabelH;
    const int scale = std::max(1, kCell / std::max(r.height, r.width));
    const std::size_t plane = std::size_t(r.height) * r.width;
    for (int ch = 0; ch < r.channels; ++ch)
      draw_map(canvas, kMargin + ch * (kCell + kGap), y, r.values.data() + ch * plane, r.height,
               r.width, scale);
    y += kCell + kGap;
  }
  canvas.save(path);
}

}  // namespace cnnrt
