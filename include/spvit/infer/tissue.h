// Tissue detection for inference: the data layer's detector (data/tissue.h), which decides which tiles are run.
#pragma once
#include "spvit/data/tissue.h"

namespace spvit::infer {

using data::TissueMask;
using data::TissueOptions;

}  // namespace spvit::infer
