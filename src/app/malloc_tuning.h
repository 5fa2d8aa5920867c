// The programs' (not the library's) glibc malloc settings.
#pragma once

namespace vt::app {

// glibc gives the free top of the heap back to the kernel once it passes
// 128 KiB (M_TRIM_THRESHOLD), and the next burst of 16-64 KiB buffers
// takes the pages back, one page fault each: ~117 faults per MiB of a TLS
// upload in vless-tun, ~88 per MiB of a download in vless-server, about
// 5% of their samples (bench/counts.sh, docs/performance.md
// "Throughput"). Keeping up to 4 MiB free at the top, grown 1 MiB at a
// time, takes that to under 1 per MiB. libvless_tun leaves an app's malloc
// alone: only vless-tun's and vless-server's main() call this.
void tuneMalloc() noexcept;

}  // namespace vt::app
