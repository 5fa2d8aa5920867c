#include "malloc_tuning.h"

#include <malloc.h>

namespace vt::app {

void tuneMalloc() noexcept {
#if defined(__GLIBC__)
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  mallopt(M_TOP_PAD, 1 << 20);
#endif
}

}  // namespace vt::app
