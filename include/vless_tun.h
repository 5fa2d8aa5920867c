/* vless_tun.h: the C API of the vless-tun client core, for apps that embed
 * it (an Android VpnService, an iOS/macOS NEPacketTunnelProvider, a router
 * daemon). The vless-tun program itself is a thin client of this API.
 *
 * A core carries every TCP and UDP flow that enters its TUN to a VLESS
 * server. The TUN is either an fd (Android, Linux) or two packet callbacks
 * (Apple's packetFlow). One core runs on the thread that calls
 * vless_tun_run(); several cores may run in one process, each on its own
 * thread with its own TUN.
 *
 * Threads: vless_tun_run() blocks its caller. vless_tun_stop(),
 * vless_tun_input_packets(), vless_tun_network_changed() and
 * vless_tun_stats_json() may be called from any thread. Every callback runs
 * on the thread inside vless_tun_run() (or, for log, inside
 * vless_tun_create()), and must not call back into the same core except
 * through the any-thread functions above. Callbacks should return quickly
 * and never wait for another core's thread: they may run while the core
 * holds the lock that all cores of the process share around the TCP/IP
 * stack (docs/embedding.md "Two cores in one process").
 *
 * Errors: functions that can fail return a negative VLESS_TUN_E* code (or
 * NULL); vless_tun_strerror() names a code; vless_tun_last_error() gives the
 * message of a core's last failure. No function aborts the process or calls
 * exit(), whatever its arguments. Full reference: docs/embedding.md. */
#ifndef VLESS_TUN_H
#define VLESS_TUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define VLESS_TUN_API __attribute__((visibility("default")))
#else
#define VLESS_TUN_API
#endif

/* Bumped on every incompatible change; vless_tun_options.struct_size lets
 * older callers keep working when fields are appended. */
#define VLESS_TUN_API_VERSION 1

typedef struct vless_tun vless_tun;

/* Result codes (0 or a positive count on success). */
enum {
  VLESS_TUN_OK = 0,
  VLESS_TUN_EINVAL = -1,   /* a NULL or invalid argument */
  VLESS_TUN_ECONFIG = -2,  /* the TOML text is invalid (message names the key) */
  VLESS_TUN_ESTATE = -3,   /* not allowed in the core's state (e.g. run twice) */
  VLESS_TUN_EAGAIN = -4,   /* the packet input queue is full: try again later */
  VLESS_TUN_ETUN = -5,     /* the TUN fd is unusable (not a TUN, closed) */
  VLESS_TUN_ESTART = -6,   /* the core could not start (see the last error) */
  VLESS_TUN_ESTOPPED = -7, /* the core is stopping or stopped */
  VLESS_TUN_EFATAL = -8,   /* run ended on a fatal error (the TUN failed) */
  VLESS_TUN_ENOMEM = -9    /* out of memory */
};

/* Log levels passed to the log callback (and accepted by log_level). */
enum {
  VLESS_TUN_LOG_TRACE = 0,
  VLESS_TUN_LOG_DEBUG = 1,
  VLESS_TUN_LOG_INFO = 2,
  VLESS_TUN_LOG_WARN = 3,
  VLESS_TUN_LOG_ERROR = 4
};

/* tun_fd values other than an fd. */
#define VLESS_TUN_FD_CALLBACKS (-1) /* packets through packet_out / vless_tun_input_packets */
#define VLESS_TUN_FD_CREATE (-2)    /* Linux: create the TUN named in [tun] (needs CAP_NET_ADMIN) */

/* flags */
#define VLESS_TUN_FLAG_AUTO_ROUTE 0x1u /* honour route.auto_route (Linux; off: ignored) */

/* One line of log (no trailing newline), already filtered by level. */
typedef void (*vless_tun_log_fn)(void *ctx, int level, const char *message);
/* Called with every socket the core opens towards the network (the server
 * connections, the sockets that resolve the server's name, and after a
 * network change a UDP socket that asks the route to the server, connected
 * but sending nothing), after socket() and before connect()/sendto(). Return 0 to go on; any other
 * value fails that connection (it is retried like any failed dial).
 * Android: return VpnService.protect(fd) ? 0 : -1. */
typedef int (*vless_tun_protect_fn)(void *ctx, int fd);
/* Packets for the TUN (callback mode): `count` IP packets, each valid only
 * during the call. Apple: one packetFlow.writePackets per call. */
typedef void (*vless_tun_packets_fn)(void *ctx, const uint8_t *const *packets,
                                     const size_t *lengths, size_t count);
/* Callback mode: the input queue has room again after an EAGAIN (at most
 * half full). Apple: call packetFlow.readPackets again. */
typedef void (*vless_tun_ready_fn)(void *ctx);

typedef struct vless_tun_options {
  /* sizeof(vless_tun_options) as the caller compiled it; set by
   * vless_tun_options_init. */
  size_t struct_size;
  /* The client config as TOML text (docs/client.md); need not be
   * NUL-terminated. [tun].fd is ignored: the TUN comes from tun_fd. */
  const char *config;
  size_t config_len;
  /* Names the config in error messages ("profile.toml"); NULL: "config". */
  const char *config_name;
  /* >= 0: a TUN fd; the core dup()s it and sets O_NONBLOCK on its copy, so
   * the caller keeps (and eventually closes) its own. VLESS_TUN_FD_CALLBACKS
   * (the default) or VLESS_TUN_FD_CREATE. */
  int tun_fd;
  unsigned flags;
  /* -1 (the default): the config's log_level; else a VLESS_TUN_LOG_*
   * level, or 5 for none. */
  int log_level;
  /* Required in callback mode, ignored otherwise. */
  vless_tun_packets_fn packet_out;
  vless_tun_ready_fn input_ready; /* optional */
  /* Optional (NULL: sockets get only server.fwmark from the config). */
  vless_tun_protect_fn protect;
  /* Optional (NULL: lines go to stderr). */
  vless_tun_log_fn log;
  void *ctx; /* passed to every callback */
  /* Nameservers (comma-separated IP literals, e.g. "192.0.2.53,2001:db8::53")
   * for looking the server's name up outside the tunnel when protect is
   * set or server.fwmark is; NULL: those of /etc/resolv.conf. Android has
   * no resolv.conf: pass the underlying network's DNS servers. */
  const char *dns_servers;
  /* Callback mode: bounds of the input queue (0: 512 packets, 1 MiB). */
  size_t input_queue_packets;
  size_t input_queue_bytes;
} vless_tun_options;

/* Fills *options with the defaults (callback mode, no callbacks). */
VLESS_TUN_API void vless_tun_options_init(vless_tun_options *options);

/* Validates the options and the config and loads the TLS CA file. NULL on
 * failure, with the reason in err (if err is not NULL; always
 * NUL-terminated, truncated to errlen) and the code in *code (if not NULL). */
VLESS_TUN_API vless_tun *vless_tun_create(const vless_tun_options *options, int *code,
                                          char *err, size_t errlen);

/* Runs the core on the calling thread until vless_tun_stop() (or a fatal
 * error). Returns VLESS_TUN_OK after a stop, VLESS_TUN_EFATAL or
 * VLESS_TUN_ESTART on failure, VLESS_TUN_ESTATE if the core already ran
 * or is running (a core runs once), VLESS_TUN_EINVAL for NULL. A stop that
 * came before run makes run return VLESS_TUN_OK at once. */
VLESS_TUN_API int vless_tun_run(vless_tun *core);

/* Asks the core to stop: resets the flows, restores routes, makes run
 * return. Any thread, any number of times, also before run. */
VLESS_TUN_API int vless_tun_stop(vless_tun *core);

/* Frees the core. VLESS_TUN_ESTATE (and nothing freed) while run is
 * executing: stop it and wait for run to return first. NULL is a no-op. */
VLESS_TUN_API int vless_tun_destroy(vless_tun *core);

/* Callback mode: hands IP packets from the TUN to the core (copied). Any
 * thread. Returns how many of the `count` packets were taken, in order;
 * VLESS_TUN_EAGAIN when none fit (input_ready follows once there is room);
 * VLESS_TUN_EINVAL for NULL pointers, a length of 0 or over 65535, or a core
 * in fd mode; VLESS_TUN_ESTOPPED once stopping. Packets given before run
 * wait in the queue. */
VLESS_TUN_API int vless_tun_input_packets(vless_tun *core, const uint8_t *const *packets,
                                          const size_t *lengths, size_t count);

/* The network under the tunnel changed (Wi-Fi to cellular, address gone).
 * `ifname` is the new default interface, or NULL when there is none. The
 * core drops its connections to the server and dials again, keeping the
 * TUN's flows where it can (UDP sessions keep their server-side mapping).
 * Any thread. On Linux the core also follows rtnetlink by itself. */
VLESS_TUN_API int vless_tun_network_changed(vless_tun *core, const char *ifname);

/* A JSON object with the core's state and counters (docs/embedding.md):
 * flows, UDP sessions, bytes, drops, the server connections. Any thread;
 * taken on the core's thread while it runs (waits for it, at most 1 s,
 * else the last snapshot). Free with vless_tun_free(). NULL only for a NULL
 * core or no memory. */
VLESS_TUN_API char *vless_tun_stats_json(vless_tun *core);

/* Copies the message of the core's last failure into buf (NUL-terminated,
 * truncated); returns its full length, 0 when there was none. Any thread. */
VLESS_TUN_API size_t vless_tun_last_error(vless_tun *core, char *buf, size_t len);

VLESS_TUN_API void vless_tun_free(void *p);
VLESS_TUN_API const char *vless_tun_strerror(int code);
VLESS_TUN_API const char *vless_tun_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VLESS_TUN_H */
