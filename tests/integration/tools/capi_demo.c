/* capi_demo: an app embedding vless-tun through the installed C API only
 * (vless_tun.h + libvless_tun), the way an Android or Apple extension does:
 * it opens the TUN itself, hands the core the fd (or drives it with packet
 * callbacks, as NEPacketTunnelFlow would), runs the core on a thread of its
 * own, runs a command through the tunnel, reads the stats JSON, and stops
 * the core from another thread. Used by tests/integration/capi_test.sh.
 *
 *   capi_demo fd|callbacks  CORE...          one core
 *   capi_demo two           CORE CORE        two cores side by side
 * where CORE is four arguments: CONFIG_FILE TUN_NAME SETUP_CMD RUN_CMD
 * (SETUP_CMD runs once the TUN exists: addresses, routes; RUN_CMD must exit
 * 0 while the core runs). Env: CAPI_MARK=N makes protect() set SO_MARK N
 * on every socket it is given (and count them); CAPI_DNS is passed as
 * dns_servers. Prints "protect calls N", "stats CORE JSON", "ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vless_tun.h>

struct core {
  int index;
  const char *config_path, *tun_name, *setup, *run_cmd;
  int tun_fd;
  int callbacks;
  vless_tun *t;
  pthread_t runner, reader;
  int run_rc;
  atomic_int reader_stop;
  atomic_int protect_calls;
  unsigned mark;
  pthread_mutex_t mu;
  pthread_cond_t ready;
  int ready_flag;
  atomic_long eagain;
};

static void die(const char *what) {
  fprintf(stderr, "capi_demo: %s\n", what);
  exit(1);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die("cannot open the config file");
  char *buf = malloc(1 << 20);
  *len = fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  return buf;
}

/* What Android's VpnService.establish() does: a TUN, without packet info. */
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
  struct core *c = ctx;
  fprintf(stderr, "[core%d] %d %s\n", c->index, level, msg);
}

static int on_protect(void *ctx, int fd) {
  struct core *c = ctx;
  atomic_fetch_add(&c->protect_calls, 1);
  if (c->mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &c->mark, sizeof c->mark) != 0) {
    return -1;
  }
  return 0;
}

/* packetFlow.writePackets: one call per batch. */
static void on_packets(void *ctx, const uint8_t *const *pkts, const size_t *lens, size_t n) {
  struct core *c = ctx;
  for (size_t i = 0; i < n; ++i) {
    if (write(c->tun_fd, pkts[i], lens[i]) < 0 && errno != EAGAIN) perror("tun write");
  }
}

static void on_ready(void *ctx) {
  struct core *c = ctx;
  pthread_mutex_lock(&c->mu);
  c->ready_flag = 1;
  pthread_cond_signal(&c->ready);
  pthread_mutex_unlock(&c->mu);
}

/* packetFlow.readPackets: batches in, re-armed only once the core has room. */
static void *reader_main(void *arg) {
  struct core *c = arg;
  enum { kBatch = 32, kMax = 65536 };
  uint8_t *bufs[kBatch];
  size_t lens[kBatch];
  for (int i = 0; i < kBatch; ++i) bufs[i] = malloc(kMax);
  while (!atomic_load(&c->reader_stop)) {
    struct pollfd p = {.fd = c->tun_fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0) continue;
    size_t n = 0;
    while (n < kBatch) {
      ssize_t r = read(c->tun_fd, bufs[n], kMax);
      if (r <= 0) break;
      lens[n++] = (size_t)r;
    }
    size_t done = 0;
    while (done < n && !atomic_load(&c->reader_stop)) {
      int rc = vless_tun_input_packets(c->t, (const uint8_t *const *)bufs + done, lens + done, n - done);
      if (rc > 0) {
        done += (size_t)rc;
        continue;
      }
      if (rc != VLESS_TUN_EAGAIN) break; /* stopping */
      atomic_fetch_add(&c->eagain, 1);
      pthread_mutex_lock(&c->mu);
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 100 * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      while (!c->ready_flag) {
        if (pthread_cond_timedwait(&c->ready, &c->mu, &ts) != 0) break;
      }
      c->ready_flag = 0;
      pthread_mutex_unlock(&c->mu);
    }
  }
  for (int i = 0; i < kBatch; ++i) free(bufs[i]);
  return NULL;
}

static void *runner_main(void *arg) {
  struct core *c = arg;
  c->run_rc = vless_tun_run(c->t);
  return NULL;
}

static void *stopper_main(void *arg) {
  vless_tun_stop(arg);
  vless_tun_stop(arg); /* idempotent */
  return NULL;
}

static void start_core(struct core *c) {
  c->tun_fd = open_tun(c->tun_name);
  if (system(c->setup) != 0) die("the setup command failed");
  size_t len = 0;
  char *cfg = slurp(c->config_path, &len);
  vless_tun_options o;
  vless_tun_options_init(&o);
  o.config = cfg;
  o.config_len = len;
  o.config_name = c->config_path;
  o.ctx = c;
  o.log = on_log;
  o.protect = on_protect;
  o.dns_servers = getenv("CAPI_DNS");
  if (c->callbacks) {
    int fl = fcntl(c->tun_fd, F_GETFL);
    fcntl(c->tun_fd, F_SETFL, fl | O_NONBLOCK);
    o.tun_fd = VLESS_TUN_FD_CALLBACKS;
    o.packet_out = on_packets;
    o.input_ready = on_ready;
    o.input_queue_packets = 8; /* smaller than a read batch: EAGAIN under load */
  } else {
    o.tun_fd = c->tun_fd;
  }
  int code = 0;
  char err[512];
  c->t = vless_tun_create(&o, &code, err, sizeof err);
  free(cfg);
  if (c->t == NULL) {
    fprintf(stderr, "capi_demo: vless_tun_create: %s (%s)\n", err, vless_tun_strerror(code));
    exit(1);
  }
  if (pthread_create(&c->runner, NULL, runner_main, c) != 0) die("pthread_create");
  if (c->callbacks && pthread_create(&c->reader, NULL, reader_main, c) != 0) die("pthread_create");
  /* Running once the stats say so (at most 5 s). */
  for (int i = 0; i < 100; ++i) {
    char *s = vless_tun_stats_json(c->t);
    int up = s != NULL && strstr(s, "\"state\":\"running\"") != NULL && strstr(s, "\"tun\"") != NULL;
    vless_tun_free(s);
    if (up) return;
    usleep(50 * 1000);
  }
  die("the core did not report running within 5 s");
}

static int finish_core(struct core *c) {
  char *s = vless_tun_stats_json(c->t);
  if (s == NULL) die("vless_tun_stats_json returned NULL");
  printf("stats core%d %s\n", c->index, s);
  vless_tun_free(s);
  /* destroy while running is refused, not a crash */
  if (vless_tun_destroy(c->t) != VLESS_TUN_ESTATE) die("destroy while running was not refused");
  pthread_t stopper;
  pthread_create(&stopper, NULL, stopper_main, c->t);
  pthread_join(stopper, NULL);
  pthread_join(c->runner, NULL);
  atomic_store(&c->reader_stop, 1);
  if (c->callbacks) pthread_join(c->reader, NULL);
  if (vless_tun_run(c->t) != VLESS_TUN_ESTATE) die("a second run was not refused");
  char err[256];
  vless_tun_last_error(c->t, err, sizeof err);
  printf("core%d run returned %d (%s) last error \"%s\"; protect calls %d; eagain %ld\n", c->index,
         c->run_rc, vless_tun_strerror(c->run_rc), err, atomic_load(&c->protect_calls),
         atomic_load(&c->eagain));
  s = vless_tun_stats_json(c->t);
  printf("final core%d %s\n", c->index, s != NULL ? s : "(null)");
  vless_tun_free(s);
  if (vless_tun_destroy(c->t) != VLESS_TUN_OK) die("destroy failed");
  close(c->tun_fd);
  return c->run_rc;
}

static void init_core(struct core *c, int index, char **argv, int callbacks) {
  memset(c, 0, sizeof *c);
  c->index = index;
  c->config_path = argv[0];
  c->tun_name = argv[1];
  c->setup = argv[2];
  c->run_cmd = argv[3];
  c->callbacks = callbacks;
  const char *mark = getenv("CAPI_MARK");
  c->mark = mark != NULL ? (unsigned)strtoul(mark, NULL, 0) : 0;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->ready, NULL);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) die("usage: capi_demo fd|callbacks|two CORE...");
  printf("%s\n", vless_tun_version());
  int ncores = strcmp(argv[1], "two") == 0 ? 2 : 1;
  if (argc != 2 + 4 * ncores) die("each core takes CONFIG TUN SETUP RUN");
  int callbacks = strcmp(argv[1], "callbacks") == 0;
  struct core cores[2];
  for (int i = 0; i < ncores; ++i) init_core(&cores[i], i + 1, argv + 2 + 4 * i, callbacks);
  for (int i = 0; i < ncores; ++i) start_core(&cores[i]);
  int bad = 0;
  for (int i = 0; i < ncores; ++i) {
    int rc = system(cores[i].run_cmd);
    printf("core%d command exit %d\n", i + 1, rc);
    if (rc != 0) bad = 1;
  }
  for (int i = 0; i < ncores; ++i) {
    if (finish_core(&cores[i]) != VLESS_TUN_OK) bad = 1;
  }
  if (bad) die("a command or a core failed");
  printf("ok\n");
  return 0;
}
