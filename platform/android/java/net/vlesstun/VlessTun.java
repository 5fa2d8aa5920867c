package net.vlesstun;

import java.nio.charset.StandardCharsets;

/**
 * The vless-tun client core for Java hosts (an Android {@code VpnService}),
 * a thin wrapper over the C API in include/vless_tun.h through
 * libvless_tun_jni.so. Plain Java: no Android SDK class is used, so this
 * compiles with javac alone.
 *
 * <p>Use from an Android {@code VpnService} (see platform/android/README.md):
 * <pre>{@code
 *   ParcelFileDescriptor pfd = new VpnService.Builder()   // inside the service
 *       .addAddress("172.19.0.1", 30).addRoute("0.0.0.0", 0)
 *       .addAddress("fdfe:dcba:9876::1", 126).addRoute("::", 0)
 *       .setMtu(1500).establish();                       // null: not prepared / revoked
 *   VlessTun tun = VlessTun.create(tomlText, "profile.toml", pfd.getFd(),
 *       VlessTun.LOG_FROM_CONFIG, "192.0.2.53",           // the underlying network's DNS
 *       fd -> protect(fd),                               // VpnService.protect(int)
 *       (level, msg) -> Log.println(level + 2, "vless-tun", msg)); // Log.VERBOSE=2..ERROR=6
 *   Thread t = new Thread(() -> { try { tun.run(); } finally { ... } }, "vless-tun");
 *   t.start();
 *   ...
 *   tun.stop(); t.join(); tun.close(); pfd.close();
 * }</pre>
 * The core dup()s the fd, so the caller keeps its own: with {@code getFd()}
 * close the {@code ParcelFileDescriptor} after {@link #destroy()}; with
 * {@code detachFd()} close the detached fd yourself after {@link #destroy()}.
 *
 * <p>Threads: {@link #run()} blocks its caller (give it a thread of its
 * own); {@link #stop()}, {@link #statsJson()}, {@link #networkChanged},
 * {@link #lastError()} may be called from any thread, also while run is
 * executing. The {@link Protector} and {@link Logger} are called on the
 * thread inside {@link #run()} (the logger also inside {@code create});
 * they must return quickly, must not throw (an exception is caught and
 * counted as a failure), and must not call {@link #statsJson()} (it waits
 * for the same thread) or {@link #destroy()}.
 *
 * <p>Errors: bad arguments (null or invalid config, a closed or negative
 * fd) throw {@link IllegalArgumentException}; calls not allowed in the
 * core's state (run twice, destroy while running, any call after destroy)
 * throw {@link IllegalStateException}; the message is the core's.
 */
public final class VlessTun implements AutoCloseable {
  /** Log levels given to {@link Logger#log} (and accepted by create). */
  public static final int LOG_TRACE = 0;
  public static final int LOG_DEBUG = 1;
  public static final int LOG_INFO = 2;
  public static final int LOG_WARN = 3;
  public static final int LOG_ERROR = 4;
  /** create: log nothing. */
  public static final int LOG_NONE = 5;
  /** create: the config's log_level. */
  public static final int LOG_FROM_CONFIG = -1;

  /**
   * Keeps one of the core's sockets out of the VPN. Called with every socket
   * the core opens towards the network (the server connections, the name
   * lookups of the server's address) before it connects. Android:
   * {@code return vpnService.protect(fd);}. Return false (or throw) to fail
   * that connection; the core retries it like any failed dial.
   */
  public interface Protector {
    boolean protect(int fd);
  }

  /** Receives the core's log lines (no trailing newline), already filtered by level. */
  public interface Logger {
    void log(int level, String message);
  }

  static {
    System.loadLibrary("vless_tun_jni");
  }

  private final Object lock = new Object();
  private long handle; // the native wrapper; 0 once destroyed
  private int runners; // threads inside run()
  private int users; // threads inside an any-thread call

  private VlessTun(long handle) {
    this.handle = handle;
  }

  /** {@code create(config, "config", tunFd, LOG_FROM_CONFIG, null, protector, logger)}. */
  public static VlessTun create(String config, int tunFd, Protector protector, Logger logger) {
    return create(config, null, tunFd, LOG_FROM_CONFIG, null, protector, logger);
  }

  /**
   * Validates the config and makes a core (not running yet).
   *
   * @param config the client config, TOML text (docs/client.md); [tun].fd is ignored
   * @param configName names the config in error messages; null: "config"
   * @param tunFd an open TUN fd (Android: the established ParcelFileDescriptor's);
   *     the core works on a dup() of it
   * @param logLevel a LOG_* level, LOG_NONE, or LOG_FROM_CONFIG
   * @param dnsServers comma-separated IP literals used to look the server's
   *     name up outside the tunnel (Android: the underlying network's DNS
   *     servers; there is no /etc/resolv.conf); null: /etc/resolv.conf's
   * @param protector null: the core's sockets get only the config's server.fwmark
   * @param logger null: lines go to stderr (which Android discards)
   * @throws IllegalArgumentException for a null or invalid config, a negative or unusable fd
   * @throws IllegalStateException when the core cannot be made (e.g. the CA file is unreadable)
   */
  public static VlessTun create(String config, String configName, int tunFd, int logLevel,
      String dnsServers, Protector protector, Logger logger) {
    if (config == null) throw new IllegalArgumentException("config is null");
    if (tunFd < 0) throw new IllegalArgumentException("tunFd " + tunFd + " is not an open fd");
    if (logLevel < LOG_FROM_CONFIG || logLevel > LOG_NONE) {
      throw new IllegalArgumentException("logLevel " + logLevel + " out of range");
    }
    long h = nativeCreate(utf8(config), utf8(configName), tunFd, logLevel, utf8(dnsServers),
        protector, logger);
    return new VlessTun(h);
  }

  /**
   * Runs the core on the calling thread until {@link #stop()}; a core runs
   * once. Returns normally after a stop (at once if stop came first).
   *
   * @throws IllegalStateException if the core ended on a fatal error or
   *     could not start (the core's message), ran already, or was destroyed
   */
  public void run() {
    long h;
    synchronized (lock) {
      h = live();
      runners++;
    }
    try {
      nativeRun(h);
    } finally {
      synchronized (lock) {
        runners--;
        lock.notifyAll();
      }
    }
  }

  /** Asks the core to stop (run returns soon). Any thread, any number of times, also before run. */
  public void stop() {
    long h = enter();
    try {
      nativeStop(h);
    } finally {
      leave();
    }
  }

  /**
   * The core's state and counters as a JSON object (docs/embedding.md).
   * Any thread but the core's own (not from a Protector or Logger).
   */
  public String statsJson() {
    long h = enter();
    try {
      return nativeStatsJson(h);
    } finally {
      leave();
    }
  }

  /**
   * The network under the tunnel changed: the core redials the server.
   * Android: call it from a ConnectivityManager callback with
   * LinkProperties.getInterfaceName() of the new default network, or null
   * when there is none. Any thread.
   */
  public void networkChanged(String ifname) {
    long h = enter();
    try {
      nativeNetworkChanged(h, utf8(ifname));
    } finally {
      leave();
    }
  }

  /** The message of the core's last failure, or null when there was none. Any thread. */
  public String lastError() {
    long h = enter();
    try {
      return nativeLastError(h);
    } finally {
      leave();
    }
  }

  /**
   * Frees the core (and the references to the Protector and Logger). Stop
   * it and let run return first. A second destroy does nothing; any other
   * call afterwards throws IllegalStateException.
   *
   * @throws IllegalStateException while run is executing
   */
  public void destroy() {
    long h;
    synchronized (lock) {
      if (handle == 0) return;
      if (runners > 0) {
        throw new IllegalStateException("destroy while run is executing: stop() and wait for run to return");
      }
      // Calls from other threads that are inside the core finish first.
      boolean interrupted = false;
      while (users > 0) {
        try {
          lock.wait();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
      if (interrupted) Thread.currentThread().interrupt();
      h = handle;
      handle = 0;
    }
    try {
      nativeDestroy(h);
    } catch (RuntimeException e) {
      // The core refused (it is running after all): it is still there.
      synchronized (lock) {
        handle = h;
      }
      throw e;
    }
  }

  /** The same as {@link #destroy()}. */
  @Override
  public void close() {
    destroy();
  }

  /** The core library's version string. */
  public static String version() {
    return nativeVersion();
  }

  private long live() {
    if (handle == 0) throw new IllegalStateException("the core was destroyed");
    return handle;
  }

  private long enter() {
    synchronized (lock) {
      long h = live();
      users++;
      return h;
    }
  }

  private void leave() {
    synchronized (lock) {
      users--;
      lock.notifyAll();
    }
  }

  // Strings cross as UTF-8 bytes: JNI's own string functions use modified
  // UTF-8, which differs for U+0000 and characters beyond the BMP.
  private static byte[] utf8(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  private static native long nativeCreate(byte[] config, byte[] configName, int tunFd,
      int logLevel, byte[] dnsServers, Protector protector, Logger logger);
  private static native void nativeRun(long handle);
  private static native void nativeStop(long handle);
  private static native void nativeDestroy(long handle);
  private static native String nativeStatsJson(long handle);
  private static native void nativeNetworkChanged(long handle, byte[] ifname);
  private static native String nativeLastError(long handle);
  private static native String nativeVersion();
}
