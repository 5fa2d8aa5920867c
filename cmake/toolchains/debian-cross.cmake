# Shared part of the Debian cross toolchain files in this folder. The file
# that includes it sets VT_CROSS_TRIPLE (Debian's multiarch triplet, which is
# also the cross compiler's prefix) and VT_CROSS_QEMU (the qemu-user binary).
#
# Debian's cross toolchains (crossbuild-essential-<arch>) need no sysroot:
# the compiler's own libc and libstdc++ come from /usr/<triplet>, and the
# target's libraries (libuv1-dev:<arch>, libtomlplusplus-dev:<arch>,
# libgtest-dev:<arch>, libc6:<arch>) are installed beside the host's with
# dpkg multiarch, in /usr/lib/<triplet>. scripts/cross.sh installs all of it.
set(CMAKE_SYSTEM_NAME Linux)

set(CMAKE_C_COMPILER ${VT_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${VT_CROSS_TRIPLE}-g++)
# Makes find_package/find_library look in /usr/lib/<triplet> (and never in
# the host's /usr/lib/x86_64-linux-gnu, which is not on the search path).
set(CMAKE_LIBRARY_ARCHITECTURE ${VT_CROSS_TRIPLE})

# pkg-config (libuv): only the target's .pc files.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${VT_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
unset(ENV{PKG_CONFIG_PATH})

# Test binaries run under qemu-user (ctest, add_test with a target as the
# command). No -L /usr/<triplet>: the program interpreter and every shared
# library come from the multiarch libc6:<arch> and friends in /lib/<triplet>
# and /usr/lib/<triplet>. With -L, qemu takes ld.so from the cross toolchain's
# libc (libc6-<arch>-cross, an older 2.36 build) but ld.so finds libc.so.6
# of the multiarch libc6:<arch> through the host's ld.so.cache; the mix hangs
# (arm64) or crashes (armhf) in the first pthread_create.
find_program(VT_CROSS_QEMU_PATH ${VT_CROSS_QEMU})
if(VT_CROSS_QEMU_PATH)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${VT_CROSS_QEMU_PATH})
endif()
