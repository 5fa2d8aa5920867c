/* mobile_host: the smallest host of the vless-tun core, the way a phone's
 * packet-tunnel extension holds it, for bench/mobile_memory.sh. It links the
 * static library (as an iOS app must), opens a TUN itself and runs ONE core
 * on a thread of its own:
 *   callbacks: packets move between the TUN and the core through
 *              vless_tun_input_packets / packet_out, the way
 *              NEPacketTunnelFlow's readPackets / writePackets do (a reader
 *              thread, batches of 16, re-armed on input_ready when the
 *              core's queue was full);
 *   fd:        the core gets the TUN fd (Android's VpnService).
 * It then waits for signals:
 *   SIGUSR1         prints one line "stats {...}" (the stats JSON cut before
 *                   its per-flow list; building it allocates inside this
 *                   process, ~0.1 KiB per flow listed);
 *   SIGUSR2         with glibc, prints "heap in_use=.. free=.. mmapped=.. KiB"
 *                   (mallinfo2: what malloc holds, where the RSS goes);
 *   SIGINT/SIGTERM  stops the core, destroys it and exits 0.
 * No protect() (Apple's provider sockets bypass the tunnel by themselves),
 * no dns_servers (the server is an address).
 *
 *   mobile_host callbacks|fd CONFIG_FILE TUN_NAME SETUP_CMD [PACKET_BYTES]
 * SETUP_CMD runs once the TUN exists (addresses, routes); PACKET_BYTES sizes
 * each read buffer in callback mode (the TUN MTU; default 1500). Prints
 * "running" once the core runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <vless_tun.h>

enum { kBatch = 16 };

static vless_tun *g_core;
static int g_tun = -1;
static size_t g_packet_bytes = 1500;
static atomic_int g_reader_stop;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_ready = PTHREAD_COND_INITIALIZER;
static int g_ready_flag;
static int g_run_rc;

static void die(const char *what) {
  fprintf(stderr, "mobile_host: %s\n", what);
  exit(1);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die("cannot open the config file");
  char *buf = malloc(64 * 1024);
  if (buf == NULL) die("malloc");
  *len = fread(buf, 1, 64 * 1024 - 1, f);
  fclose(f);
  return buf;
}

static int open_tun(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die("TUNSETIFF");
  return fd;
}

static void on_log(void *ctx, int level, const char *msg) {
  (void)ctx;
  fprintf(stderr, "core %d %s\n", level, msg);
}

/* packetFlow.writePackets: one call per batch. A full TUN drops, as a
 * system would. */
static void on_packets(void *ctx, const uint8_t *const *pkts, const size_t *lens, size_t n) {
  (void)ctx;
  for (size_t i = 0; i < n; ++i) {
    if (write(g_tun, pkts[i], lens[i]) < 0 && errno != EAGAIN) perror("tun write");
  }
}

static void on_ready(void *ctx) {
  (void)ctx;
  pthread_mutex_lock(&g_mu);
  g_ready_flag = 1;
  pthread_cond_signal(&g_ready);
  pthread_mutex_unlock(&g_mu);
}

/* packetFlow.readPackets: a batch in; the next read only once all were
 * taken (else wait for input_ready, at most 100 ms). */
static void *reader_main(void *arg) {
  (void)arg;
  uint8_t *bufs[kBatch];
  size_t lens[kBatch];
  for (int i = 0; i < kBatch; ++i) {
    bufs[i] = malloc(g_packet_bytes);
    if (bufs[i] == NULL) die("malloc");
  }
  while (!atomic_load(&g_reader_stop)) {
    struct pollfd p = {.fd = g_tun, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0) continue;
    size_t n = 0;
    while (n < kBatch) {
      ssize_t r = read(g_tun, bufs[n], g_packet_bytes);
      if (r <= 0) break;
      lens[n++] = (size_t)r;
    }
    size_t done = 0;
    while (done < n && !atomic_load(&g_reader_stop)) {
      int rc = vless_tun_input_packets(g_core, (const uint8_t *const *)bufs + done, lens + done, n - done);
      if (rc > 0) {
        done += (size_t)rc;
        continue;
      }
      if (rc != VLESS_TUN_EAGAIN) break; /* stopping */
      pthread_mutex_lock(&g_mu);
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 100 * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      while (!g_ready_flag) {
        if (pthread_cond_timedwait(&g_ready, &g_mu, &ts) != 0) break;
      }
      g_ready_flag = 0;
      pthread_mutex_unlock(&g_mu);
    }
  }
  for (int i = 0; i < kBatch; ++i) free(bufs[i]);
  return NULL;
}

static void *runner_main(void *arg) {
  (void)arg;
  g_run_rc = vless_tun_run(g_core);
  return NULL;
}

static void print_stats(void) {
  char *s = vless_tun_stats_json(g_core);
  if (s == NULL) {
    printf("stats null\n");
    return;
  }
  char *cut = strstr(s, ",\"flows\":[");
  if (cut != NULL) *cut = '\0';
  printf("stats %s}\n", s);
  vless_tun_free(s);
}

static void print_heap(void) {
#ifdef __GLIBC__
  struct mallinfo2 mi = mallinfo2();
  printf("heap in_use=%zu free=%zu mmapped=%zu KiB\n", mi.uordblks / 1024, mi.fordblks / 1024,
         mi.hblkhd / 1024);
#else
  printf("heap unknown\n");
#endif
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 5 || argc > 6) die("usage: mobile_host callbacks|fd CONFIG TUN_NAME SETUP_CMD [PACKET_BYTES]");
  int callbacks = strcmp(argv[1], "callbacks") == 0;
  if (!callbacks && strcmp(argv[1], "fd") != 0) die("the mode is callbacks or fd");
  if (argc == 6) g_packet_bytes = strtoul(argv[5], NULL, 10);
  if (g_packet_bytes < 576 || g_packet_bytes > 65535) die("PACKET_BYTES: 576..65535");

  /* Every thread inherits the mask; main takes the signals with sigwait. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  g_tun = open_tun(argv[3]);
  if (system(argv[4]) != 0) die("the setup command failed");
  size_t len = 0;
  char *cfg = slurp(argv[2], &len);
  vless_tun_options o;
  vless_tun_options_init(&o);
  o.config = cfg;
  o.config_len = len;
  o.config_name = argv[2];
  o.log = on_log;
  if (callbacks) {
    int fl = fcntl(g_tun, F_GETFL);
    fcntl(g_tun, F_SETFL, fl | O_NONBLOCK);
    o.tun_fd = VLESS_TUN_FD_CALLBACKS;
    o.packet_out = on_packets;
    o.input_ready = on_ready;
    /* A phone host's bound on packets copied in and not yet taken: 128
     * packets or 256 KiB (the default is 512 and 1 MiB). */
    o.input_queue_packets = 128;
    o.input_queue_bytes = 256 * 1024;
  } else {
    o.tun_fd = g_tun;
  }
  int code = 0;
  char err[512];
  g_core = vless_tun_create(&o, &code, err, sizeof err);
  free(cfg);
  if (g_core == NULL) {
    fprintf(stderr, "mobile_host: vless_tun_create: %s (%s)\n", err, vless_tun_strerror(code));
    return 1;
  }
  pthread_t runner, reader;
  if (pthread_create(&runner, NULL, runner_main, NULL) != 0) die("pthread_create");
  if (callbacks && pthread_create(&reader, NULL, reader_main, NULL) != 0) die("pthread_create");
  int up = 0;
  for (int i = 0; i < 100 && !up; ++i) {
    char *s = vless_tun_stats_json(g_core);
    up = s != NULL && strstr(s, "\"state\":\"running\"") != NULL;
    vless_tun_free(s);
    if (!up) usleep(50 * 1000);
  }
  if (!up) die("the core did not report running within 5 s");
  printf("running %s %s\n", argv[1], vless_tun_version());

  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      print_stats();
      continue;
    }
    if (sig == SIGUSR2) {
      print_heap();
      continue;
    }
    break;
  }
  vless_tun_stop(g_core);
  pthread_join(runner, NULL);
  atomic_store(&g_reader_stop, 1);
  if (callbacks) pthread_join(reader, NULL);
  printf("stopped: run returned %d (%s)\n", g_run_rc, vless_tun_strerror(g_run_rc));
  if (vless_tun_destroy(g_core) != VLESS_TUN_OK) die("destroy failed");
  close(g_tun);
  return g_run_rc == VLESS_TUN_OK ? 0 : 1;
}
