#include "resample.h"

#include <algorithm>
#include <vector>

namespace coral {

void ResampleRgb(const uint8_t* src, int width, const AxisTaps& x, const AxisTaps& y, float scale, float offset,
                 float* out) {
  // Only the source columns some output column reads.
  const int total_x_taps = x.first[x.outputs];
  int first_column = 0;
  int last_column = -1;
  if (total_x_taps > 0) {
    first_column = *std::min_element(x.index, x.index + total_x_taps);
    last_column = *std::max_element(x.index, x.index + total_x_taps);
  }
  const size_t span = static_cast<size_t>(last_column - first_column + 1) * 3;
  const size_t stride = static_cast<size_t>(width) * 3;
  const size_t row_length = static_cast<size_t>(x.outputs) * 3;
  // Vertical pass first, one output row at a time: it walks contiguous source
  // rows, which the compiler vectorises, and leaves the horizontal pass (a
  // gather) only the output rows to do: several times faster than
  // horizontal-first for a camera frame (the figures are in the README's
  // design notes).
  std::vector<float> line(span);
  for (int oy = 0; oy < y.outputs; oy++) {
    std::fill(line.begin(), line.end(), 0.0f);
    for (int t = y.first[oy]; t < y.first[oy + 1]; t++) {
      const uint8_t* row = src + static_cast<size_t>(y.index[t]) * stride + static_cast<size_t>(first_column) * 3;
      const float w = y.weight[t];
      float* acc = line.data();
      for (size_t i = 0; i < span; i++) acc[i] += static_cast<float>(row[i]) * w;
    }
    float* dst = out + static_cast<size_t>(oy) * row_length;
    const float* from = line.data() - static_cast<size_t>(first_column) * 3;
    for (int ox = 0; ox < x.outputs; ox++) {
      float r = 0, g = 0, b = 0;
      for (int t = x.first[ox]; t < x.first[ox + 1]; t++) {
        const float* p = from + static_cast<size_t>(x.index[t]) * 3;
        const float w = x.weight[t];
        r += p[0] * w;
        g += p[1] * w;
        b += p[2] * w;
      }
      dst[ox * 3] = r * scale + offset;
      dst[ox * 3 + 1] = g * scale + offset;
      dst[ox * 3 + 2] = b * scale + offset;
    }
  }
}

}  // namespace coral
