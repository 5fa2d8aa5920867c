# 64-bit Arm (arm64: phones, recent routers) with Debian's cross toolchain:
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake ...
# See scripts/cross.sh and docs/cross.md.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(VT_CROSS_TRIPLE aarch64-linux-gnu)
set(VT_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
