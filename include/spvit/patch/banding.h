// Band sizes for the patcher's O(pixels) passes.
//
// Whole-image temporaries are slow on CPU: every fresh multi-megabyte allocation is mmapped and page-faulted in
// again (measured: converting a 4096²×3 image to float costs 0.6 s of page faults on the CI VM, 0.03 s of work),
// and they do not fit in cache. So full-image passes run over bands of rows whose temporaries stay around a
// quarter of a million elements: they are reused from the heap and stay in L2. On a GPU the same code runs with
// more, smaller launches, which the kernels layer can later replace by fused kernels.
#pragma once
#include <algorithm>
#include <cstdint>

namespace spvit::patch::detail {

constexpr int64_t kBandElements = int64_t{1} << 18;

// Rows (entries of the outermost dimension) per band, for rows of `row_elements` elements: a positive multiple of
// `multiple` close to kBandElements elements.
inline int64_t band_rows(int64_t row_elements, int64_t multiple = 1) {
  const int64_t rows = std::max<int64_t>(1, kBandElements / std::max<int64_t>(1, row_elements));
  return std::max<int64_t>(multiple, rows / multiple * multiple);
}

}  // namespace spvit::patch::detail
