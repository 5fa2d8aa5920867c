/* jni_test_helper.c: test-only natives for VlessTunJniTest (tests/integration/
 * jni_test.sh). Not part of the Android library. It gives the Java test what
 * Android gives an app and plain Java cannot do:
 * - openTun(name): an fd on the TUN device `name` (made and configured by the
 *   test beforehand, as Android's VpnService.Builder.establish() does), opened
 *   with /dev/net/tun + TUNSETIFF (IFF_TUN | IFF_NO_PI);
 * - setMark(fd, mark): SO_MARK on a socket, which is what VpnService.protect()
 *   amounts to on Android (fwmark policy routing), so the test's Protector
 *   does the same;
 * - isOpen(fd), closeFd(fd). */
#include <errno.h>
#include <fcntl.h>
#include <jni.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

JNIEXPORT jint JNICALL Java_net_vlesstun_test_VlessTunJniTest_openTun(JNIEnv* env, jclass cls,
                                                                      jstring name) {
  (void)cls;
  if (!name) return -EINVAL;
  const char* n = (*env)->GetStringUTFChars(env, name, NULL);
  if (!n) return -ENOMEM;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, n, IFNAMSIZ - 1);
  (*env)->ReleaseStringUTFChars(env, name, n);
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

JNIEXPORT jint JNICALL Java_net_vlesstun_test_VlessTunJniTest_setMark(JNIEnv* env, jclass cls,
                                                                      jint fd, jint mark) {
  (void)env;
  (void)cls;
  unsigned m = (unsigned)mark;
  return setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof m) == 0 ? 0 : errno;
}

/* SO_TYPE of a socket (SOCK_STREAM 1, SOCK_DGRAM 2), or -errno. */
JNIEXPORT jint JNICALL Java_net_vlesstun_test_VlessTunJniTest_socketType(JNIEnv* env, jclass cls,
                                                                         jint fd) {
  (void)env;
  (void)cls;
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 ? type : -errno;
}

JNIEXPORT jboolean JNICALL Java_net_vlesstun_test_VlessTunJniTest_isOpen(JNIEnv* env, jclass cls,
                                                                         jint fd) {
  (void)env;
  (void)cls;
  return fcntl(fd, F_GETFD) >= 0 ? JNI_TRUE : JNI_FALSE;
}

JNIEXPORT void JNICALL Java_net_vlesstun_test_VlessTunJniTest_closeFd(JNIEnv* env, jclass cls,
                                                                      jint fd) {
  (void)env;
  (void)cls;
  close(fd);
}
