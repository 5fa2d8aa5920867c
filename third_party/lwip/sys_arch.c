/* NO_SYS glue: lwIP asks for time and randomness; nothing else. */
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "lwip/arch.h"
#include "lwip/sys.h"

u32_t sys_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (u32_t)(ts.tv_sec * 1000u + ts.tv_nsec / 1000000);
}

unsigned int vt_lwip_rand(void) {
  unsigned int v = 0;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = (unsigned int)(ts.tv_nsec ^ (ts.tv_sec << 20));
  }
  return v;
}
