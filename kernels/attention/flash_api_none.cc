// Built without nvcc: the same interface, always unsupported, so callers fall back.
#include "kernels/attention/flash_params.h"

namespace likeness::kernels::flash {

bool FlashCompiled() { return false; }
std::string FlashUnsupportedReason(const FlashForwardParams&) { return "built without CUDA"; }
std::string FlashForward(const FlashForwardParams&, void*) { return "flash forward: built without CUDA"; }
std::string FlashBackward(const FlashBackwardParams&, void*) { return "flash backward: built without CUDA"; }

}  // namespace likeness::kernels::flash
