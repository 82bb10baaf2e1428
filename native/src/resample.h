// Separable resampling of an 8-bit RGB image into a float tensor, for the
// detector's input. The filter is chosen by the caller, which hands over
// per-axis taps (nodes/core/blazeface.ts computes and caches them): output
// sample o along an axis reads source samples index[k] with weight[k] for
// k in [first[o], first[o + 1]). No taps means padding: value 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace coral {

struct AxisTaps {
  const int32_t* first;  // outputs + 1 entries
  const int32_t* index;
  const float* weight;
  int outputs;
};

// out[(oy * x.outputs + ox) * 3 + c] = sum_y sum_x w * src[...] * scale + offset
// src is rows of `width` RGB pixels; every index in x and y must lie inside it.
void ResampleRgb(const uint8_t* src, int width, const AxisTaps& x, const AxisTaps& y, float scale, float offset,
                 float* out);

}  // namespace coral
