// Regions, crops and index checks shared by every dataset.
#include "spvit/data/dataset.h"

#include <cstdlib>
#include <sstream>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "spvit/core/error.h"

namespace spvit::data {

int64_t Region::numel() const {
  int64_t n = 1;
  for (size_t d = 0; d < begin.size(); ++d) n *= std::max<int64_t>(0, end[d] - begin[d]);
  return n;
}

std::vector<int64_t> Region::extents() const {
  std::vector<int64_t> e(begin.size());
  for (size_t d = 0; d < begin.size(); ++d) e[d] = end[d] - begin[d];
  return e;
}

Region full_region(const std::vector<int64_t>& shape) { return Region{std::vector<int64_t>(shape.size(), 0), shape}; }

bool contains(const Region& outer, const Region& inner) {
  if (outer.begin.size() != inner.begin.size()) return false;
  for (size_t d = 0; d < outer.begin.size(); ++d) {
    if (inner.begin[d] < outer.begin[d] || inner.end[d] > outer.end[d]) return false;
  }
  return true;
}

std::string to_string(const Region& region) {
  std::ostringstream out;
  out << "[";
  for (size_t d = 0; d < region.begin.size(); ++d) out << (d ? ", " : "") << region.begin[d] << ":" << region.end[d];
  out << "]";
  return out.str();
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  for (size_t d = 0; d < shape.size(); ++d) out << (d ? "x" : "") << shape[d];
  return out.str();
}

void check_region(const Region& region, const std::vector<int64_t>& shape, const std::string& what) {
  if (region.begin.size() != shape.size() || region.end.size() != shape.size()) {
    SPVIT_THROW(DataError, what, ": region ", to_string(region), " has ", region.begin.size(), "/", region.end.size(),
                " dimensions but the sample is ", shape.size(), "-D (", shape_string(shape), ")");
  }
  for (size_t d = 0; d < shape.size(); ++d) {
    if (region.begin[d] < 0 || region.end[d] > shape[d] || region.begin[d] >= region.end[d]) {
      SPVIT_THROW(DataError, what, ": region ", to_string(region), " is empty or outside the sample of shape ",
                  shape_string(shape));
    }
  }
}

Region band_region(const std::vector<int64_t>& shape, int dim, int64_t begin, int64_t end) {
  SPVIT_CHECK(dim >= 0 && dim < static_cast<int>(shape.size()), "band_region: dim ", dim, " of a ", shape.size(), "-D shape");
  Region r = full_region(shape);
  r.begin[dim] = begin;
  r.end[dim] = end;
  return r;
}

torch::Tensor model_image(const torch::Tensor& image) {
  return image.scalar_type() == torch::kUInt8 ? image.to(torch::kFloat32).div_(255.0) : image;
}

torch::Tensor model_mask(const torch::Tensor& mask) {
  return mask.scalar_type() == torch::kLong ? mask : mask.to(torch::kLong);
}

Sample crop(const Sample& sample, const Region& region) {
  if (!contains(sample.region, region)) {
    SPVIT_THROW(DataError, "cannot crop ", to_string(region), " from sample '", sample.id, "' holding ",
                to_string(sample.region));
  }
  Sample out = sample;
  out.region = region;
  for (int d = 0; d < region.dims(); ++d) {
    const int64_t start = region.begin[d] - sample.region.begin[d];
    out.image = out.image.narrow(d, start, region.extent(d));
    out.mask = out.mask.narrow(d, start, region.extent(d));
  }
  return out;
}

torch::Tensor empty_buffer(const std::vector<int64_t>& sizes, torch::ScalarType type) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  const auto bytes = static_cast<size_t>(n) * c10::elementSize(type);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes >= 4 * kHuge) {
    const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    if (void* p = std::aligned_alloc(kHuge, rounded)) {
      madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure just means 4 KB pages
      return torch::from_blob(p, sizes, [](void* q) { std::free(q); }, torch::TensorOptions().dtype(type));
    }
  }
#endif
  return torch::empty(sizes, type);
}

void check_index(const Dataset& dataset, int64_t index) {
  if (index < 0 || index >= dataset.size()) {
    SPVIT_THROW(Error, dataset.describe(), ": sample index ", index, " is out of range [0, ", dataset.size(), ")");
  }
}

}  // namespace spvit::data
