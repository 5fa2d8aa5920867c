/* Compiler/platform glue for lwIP on Linux/Android/Apple userspace. */
#ifndef VT_LWIP_ARCH_CC_H
#define VT_LWIP_ARCH_CC_H

#include <stdio.h>
#include <stdlib.h>

#define LWIP_TIMEVAL_PRIVATE 0
#include <sys/time.h>

/* Our rand for ISNs and ports: arc4random is not on glibc 2.36. */
unsigned int vt_lwip_rand(void);
#define LWIP_RAND() ((u32_t)vt_lwip_rand())

#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
    printf x;                 \
  } while (0)
#define LWIP_PLATFORM_ASSERT(x)                                                      \
  do {                                                                               \
    fprintf(stderr, "lwIP assertion \"%s\" failed at %s:%d\n", x, __FILE__, __LINE__); \
    abort();                                                                         \
  } while (0)

#endif
