# 32-bit Arm, hard float (armhf: ARMv7-A with VFPv3-D16 and Thumb-2, Debian's
# baseline; older phones, many routers) with Debian's cross toolchain:
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake ...
# See scripts/cross.sh and docs/cross.md.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(VT_CROSS_TRIPLE arm-linux-gnueabihf)
set(VT_CROSS_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
