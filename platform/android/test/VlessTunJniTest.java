package net.vlesstun.test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import net.vlesstun.VlessTun;

/**
 * The JVM half of tests/integration/jni_test.sh: drives net.vlesstun.VlessTun
 * the way an Android VpnService would, in a network namespace the script
 * prepared (a TUN device it made and configured, routes that send
 * everything but marked traffic into that TUN, vless-server behind a veth).
 *
 * Usage: VlessTunJniTest TUN_NAME MARK CONFIG_FILE URL...
 * Prints "OK ..." lines, the counters the script checks ("PROTECT phase=...
 * ok=N") and "PASS"; exits 1 with a "FAIL: ..." line on the first failure.
 * Every wait is bounded.
 */
public final class VlessTunJniTest {
  // Test-only natives (platform/android/test/jni_test_helper.c).
  static native int openTun(String name); // fd, or -errno
  static native int setMark(int fd, int mark); // 0 or errno
  static native boolean isOpen(int fd);
  static native int socketType(int fd); // SOCK_STREAM 1, SOCK_DGRAM 2, or -errno
  static native void closeFd(int fd);

  static {
    System.loadLibrary("vless_tun_jni_test_helper");
  }

  static String tunName;
  static int mark;
  static String config;
  static List<String> urls = new ArrayList<>();

  static void fail(String m) {
    System.out.println("FAIL: " + m);
    System.out.flush();
    System.exit(1);
  }

  static void ok(String m) {
    System.out.println("OK " + m);
    System.out.flush();
  }

  static void check(boolean cond, String m) {
    if (!cond) fail(m);
  }

  /** Runs r, which must throw an exception of class want; returns its message. */
  static String expectThrows(Class<? extends Throwable> want, Runnable r, String what) {
    try {
      r.run();
    } catch (Throwable t) {
      if (!want.isInstance(t)) fail(what + ": threw " + t + ", want " + want.getSimpleName());
      ok(what + ": " + t.getClass().getSimpleName() + ": " + t.getMessage());
      return t.getMessage();
    }
    fail(what + ": no exception, want " + want.getSimpleName());
    return null;
  }

  static int openTunOrFail() {
    int fd = openTun(tunName);
    check(fd >= 0, "open TUN " + tunName + ": errno " + -fd);
    return fd;
  }

  /**
   * Children run without the sanitizer runtime that an ASan build preloads
   * into this JVM (curl with libasan preloaded hangs).
   */
  static ProcessBuilder plain(ProcessBuilder pb) {
    pb.environment().remove("LD_PRELOAD");
    pb.environment().remove("ASAN_OPTIONS");
    return pb;
  }

  /** curl URL (a child of this JVM, so in its namespace); exit code (-1: hung) and output. */
  static int curl(String url, int maxSeconds, StringBuilder out) throws Exception {
    java.io.File f = java.io.File.createTempFile("vt-jni-curl", ".out");
    try {
      ProcessBuilder pb = plain(new ProcessBuilder("curl", "-sS", "--max-time",
          String.valueOf(maxSeconds), url));
      pb.redirectErrorStream(true);
      pb.redirectOutput(f);
      Process p = pb.start();
      p.getOutputStream().close();
      // curl's --max-time bounds it; this bounds a curl that hangs anyway.
      if (!p.waitFor(maxSeconds + 5, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        p.waitFor(5, TimeUnit.SECONDS);
        return -1;
      }
      out.append(new String(Files.readAllBytes(f.toPath()), StandardCharsets.UTF_8));
      return p.exitValue();
    } finally {
      f.delete();
    }
  }

  static final Pattern NUM = Pattern.compile("\"([a-z_]+)\":(\\d+)");

  /** A counter from a stats object, e.g. num(stats, "tcp", "opened"). */
  static long num(String json, String section, String key) {
    int at = json.indexOf("\"" + section + "\":{");
    check(at >= 0, "stats have no \"" + section + "\" object: " + json);
    int end = json.indexOf('}', at);
    Matcher m = NUM.matcher(json.substring(at, end));
    while (m.find()) {
      if (m.group(1).equals(key)) return Long.parseLong(m.group(2));
    }
    fail("stats have no " + section + "." + key + ": " + json);
    return -1;
  }

  static boolean stateIs(String json, String state) {
    return json.matches("(?s).*\"state\"\\s*:\\s*\"" + state + "\".*");
  }

  /** A core running on a thread of its own, as an app runs it. */
  static final class Runner {
    final VlessTun tun;
    final Thread thread;
    volatile Throwable error;
    volatile boolean returned;

    Runner(VlessTun tun, String name) {
      this.tun = tun;
      thread = new Thread(() -> {
        try {
          tun.run();
          returned = true;
        } catch (Throwable t) {
          error = t;
        }
      }, name);
      thread.setDaemon(true); // a hung core must not keep the JVM up after a FAIL
      thread.start();
    }

    void waitRunning() throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      String s = "";
      while (System.nanoTime() < deadline) {
        check(thread.isAlive(), "run ended early: " + error);
        s = tun.statsJson();
        if (stateIs(s, "running")) return;
        Thread.sleep(20);
      }
      fail("the core is not running after 10 s: " + s);
    }

    /** stop() from another thread; run must return normally within 10 s. */
    void stopFromOtherThread() throws InterruptedException {
      Thread stopper = new Thread(tun::stop, "stopper");
      stopper.setDaemon(true);
      long t0 = System.nanoTime();
      stopper.start();
      stopper.join(10_000);
      check(!stopper.isAlive(), "stop() did not return within 10 s");
      thread.join(10_000);
      check(!thread.isAlive(), "run did not return within 10 s of stop()");
      check(error == null, "run threw after stop: " + error);
      check(returned, "run did not return normally");
      ok("stop() from thread 'stopper': run returned in "
          + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms");
    }
  }

  /** Logs with a phase prefix ("LOG[B] 2 ..."), which the script reads. */
  static VlessTun.Logger logger(String phase, AtomicInteger lines) {
    return (level, message) -> {
      lines.incrementAndGet();
      System.out.println("LOG[" + phase + "] " + level + " " + message);
    };
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 4) fail("usage: VlessTunJniTest TUN_NAME MARK CONFIG_FILE URL...");
    tunName = args[0];
    mark = Integer.decode(args[1]);
    config = new String(Files.readAllBytes(Paths.get(args[2])), StandardCharsets.UTF_8);
    for (int i = 3; i < args.length; i++) urls.add(args[i]);
    ok("core version " + VlessTun.version());

    badArguments();
    nativesDirectly();
    lifecycleWithoutNetwork();
    tunnel();
    unprotectedLoopIsRefused();
    throwingCallbacks();
    System.out.println("PASS");
    System.out.flush();
    System.exit(0);
  }

  /** Phase A: every bad argument is an exception, never a crash. */
  static void badArguments() {
    int fd = openTunOrFail();
    AtomicInteger lines = new AtomicInteger();
    VlessTun.Logger log = logger("A", lines);
    expectThrows(IllegalArgumentException.class,
        () -> VlessTun.create(null, fd, null, log), "null config");
    expectThrows(IllegalArgumentException.class,
        () -> VlessTun.create(config, -1, null, log), "fd -1");
    expectThrows(IllegalArgumentException.class,
        () -> VlessTun.create(config, "x.toml", fd, 9, null, null, log), "log level 9");
    String m = expectThrows(IllegalArgumentException.class,
        () -> VlessTun.create("[server]\naddress = 5\n", "bad.toml", fd, VlessTun.LOG_FROM_CONFIG,
            null, null, log), "invalid config");
    check(m != null && m.contains("address"), "the invalid-config message names no key: " + m);
    expectThrows(IllegalArgumentException.class,
        () -> VlessTun.create("this is = = not toml", fd, null, log), "not TOML");
    // Strings cross as real UTF-8 both ways (not JNI's modified UTF-8).
    String name = "pr\u00f3file-\ud83d\ude00.toml";
    m = expectThrows(IllegalArgumentException.class,
        () -> VlessTun.create("[server]\naddress = 5\n", name, fd, VlessTun.LOG_FROM_CONFIG,
            null, null, log), "invalid config named " + name);
    check(m != null && m.startsWith(name + ":"), "the config name came back as " + m);
    // stdin is /dev/null (the script sees to it): open, but not a TUN.
    expectThrows(IllegalArgumentException.class,
        () -> VlessTun.create(config, 0, null, log), "fd 0 (/dev/null, not a TUN)");
    closeFd(fd);
    // The number of a closed fd (if the JVM reused it meanwhile, it is no TUN either).
    expectThrows(IllegalArgumentException.class,
        () -> VlessTun.create(config, fd, null, log), "closed fd " + fd);
  }

  /**
   * Phase A: the natives themselves (private; reached by reflection) reject
   * a null or freed handle and null arguments without crashing, whatever
   * the Java wrapper would have caught first.
   */
  static void nativesDirectly() throws Exception {
    int fd = openTunOrFail();
    for (String n : new String[] {"nativeRun", "nativeStop", "nativeDestroy", "nativeStatsJson",
        "nativeLastError"}) {
      Method m = VlessTun.class.getDeclaredMethod(n, long.class);
      m.setAccessible(true);
      Throwable t = null;
      try {
        m.invoke(null, 0L);
      } catch (InvocationTargetException e) {
        t = e.getCause();
      }
      check(t instanceof IllegalStateException, n + "(0): " + t + ", want IllegalStateException");
    }
    Method create = VlessTun.class.getDeclaredMethod("nativeCreate", byte[].class, byte[].class,
        int.class, int.class, byte[].class, VlessTun.Protector.class, VlessTun.Logger.class);
    create.setAccessible(true);
    Object[][] bad = {
        {null, null, fd, -1, null, null, null},
        {config.getBytes(StandardCharsets.UTF_8), null, -5, -1, null, null, null},
        {config.getBytes(StandardCharsets.UTF_8), null, fd, 77, null, null, null},
    };
    for (Object[] a : bad) {
      Throwable t = null;
      try {
        create.invoke(null, a);
      } catch (InvocationTargetException e) {
        t = e.getCause();
      }
      check(t instanceof IllegalArgumentException,
          "nativeCreate(config " + (a[0] == null ? "null" : "ok") + ", fd " + a[2] + ", level "
              + a[3] + "): " + t + ", want IllegalArgumentException");
      ok("nativeCreate with a bad argument: " + t);
    }
    closeFd(fd);
    ok("natives with handle 0 throw IllegalStateException");
  }

  /** Phase A: stop before run, run twice, use after destroy. */
  static void lifecycleWithoutNetwork() throws Exception {
    int fd = openTunOrFail();
    AtomicInteger lines = new AtomicInteger();
    VlessTun tun = VlessTun.create(config, "jni-test.toml", fd, VlessTun.LOG_FROM_CONFIG, null,
        f -> true, logger("A", lines));
    check(stateIs(tun.statsJson(), "created"), "a new core is not 'created': " + tun.statsJson());
    tun.stop(); // latched: run returns at once
    Runner r = new Runner(tun, "vless-tun-run-A");
    r.thread.join(10_000);
    check(!r.thread.isAlive() && r.returned, "run after an early stop did not return at once: " + r.error);
    ok("stop() before run(): run returned at once; stats " + tun.statsJson());
    expectThrows(IllegalStateException.class, tun::run, "run a second time");
    tun.stop(); // again: no error
    tun.networkChanged(null); // a stopped core: nothing to do, no error
    String le = tun.lastError();
    ok("lastError after the runs: " + le);
    tun.destroy();
    check(isOpen(fd), "destroy closed the caller's fd (the core must work on a dup)");
    tun.destroy(); // a second destroy does nothing
    expectThrows(IllegalStateException.class, tun::run, "run after destroy");
    expectThrows(IllegalStateException.class, tun::stop, "stop after destroy");
    expectThrows(IllegalStateException.class, tun::statsJson, "statsJson after destroy");
    expectThrows(IllegalStateException.class, tun::lastError, "lastError after destroy");
    expectThrows(IllegalStateException.class, () -> tun.networkChanged("eth0"),
        "networkChanged after destroy");
    closeFd(fd);
  }

  static void curlAll(String phase) throws Exception {
    for (String url : urls) {
      StringBuilder out = new StringBuilder();
      int rc = curl(url, 10, out);
      check(rc == 0 && out.toString().contains("hello through vless-tun"),
          phase + ": curl " + url + " exit " + rc + ": " + out);
      ok(phase + ": curl " + url + " through the tunnel");
    }
  }

  /** n curls at once (each flow needs a server connection of its own: no mux). */
  static void parallelCurls(String phase, int n) throws Exception {
    List<Process> ps = new ArrayList<>();
    List<java.io.File> outs = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      java.io.File f = java.io.File.createTempFile("vt-jni-curl", ".out");
      f.deleteOnExit();
      outs.add(f);
      // 64 KiB at 32 KiB/s: each flow stays open ~2 s, so the 4 overlap.
      ProcessBuilder pb = plain(new ProcessBuilder("curl", "-sS", "--max-time", "15", "--limit-rate", "32K",
          "-o", f.getPath(), urls.get(i % urls.size()) + "big.bin"));
      pb.redirectErrorStream(true);
      pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
      ps.add(pb.start());
    }
    for (int i = 0; i < n; i++) {
      Process p = ps.get(i);
      if (!p.waitFor(20, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        fail(phase + ": parallel curl " + i + " did not finish within 20 s");
      }
      check(p.exitValue() == 0, phase + ": parallel curl " + i + " exit " + p.exitValue());
      check(outs.get(i).length() == 65536, phase + ": parallel curl " + i + " got "
          + outs.get(i).length() + " bytes, want 65536");
    }
    ok(phase + ": " + n + " curls at once through the tunnel");
  }

  /** Phase B: the tunnel, with a Protector that marks every outer socket. */
  static void tunnel() throws Exception {
    int fd = openTunOrFail();
    AtomicInteger calls = new AtomicInteger(), marked = new AtomicInteger(), lines = new AtomicInteger();
    // Server connections (TCP) and the UDP sockets the core asks the route
    // with after a network change (no packet sent): counted apart.
    AtomicInteger streams = new AtomicInteger(), datagrams = new AtomicInteger();
    List<String> threads = new ArrayList<>();
    VlessTun.Protector protector = sock -> {
      calls.incrementAndGet();
      int type = socketType(sock);
      if (type == 1) streams.incrementAndGet();
      if (type == 2) datagrams.incrementAndGet();
      synchronized (threads) {
        String t = Thread.currentThread().getName();
        if (!threads.contains(t)) threads.add(t);
      }
      int e = setMark(sock, mark); // what VpnService.protect() does on Android
      if (e != 0) {
        System.out.println("protect(" + sock + "): SO_MARK failed, errno " + e);
        return false;
      }
      marked.incrementAndGet();
      return true;
    };
    VlessTun tun = VlessTun.create(config, "jni-test.toml", fd, VlessTun.LOG_FROM_CONFIG, null,
        protector, logger("B", lines));
    Runner r = new Runner(tun, "vless-tun-run-B");
    r.waitRunning();
    ok("B: running on thread '" + r.thread.getName() + "'");
    expectThrows(IllegalStateException.class, tun::destroy, "B: destroy while running");
    expectThrows(IllegalStateException.class, tun::run, "B: run while running (another thread)");

    curlAll("B");
    tun.networkChanged("veth0");
    ok("B: networkChanged(\"veth0\")");
    curlAll("B after networkChanged");
    parallelCurls("B", 4);

    String stats = tun.statsJson();
    System.out.println("STATS[B] " + stats);
    long opened = num(stats, "tcp", "opened");
    long loops = num(stats, "tcp", "loops_refused");
    long want = 2L * urls.size() + 4;
    check(opened >= want, "B: tcp.opened " + opened + " < " + want + " flows");
    check(loops == 0, "B: tcp.loops_refused " + loops + ": the core saw its own connections in the TUN");
    ok("B: stats tcp.opened=" + opened + " tcp.loops_refused=" + loops);

    r.stopFromOtherThread();
    String after = tun.statsJson();
    System.out.println("STATS_AFTER[B] " + after);
    check(stateIs(after, "stopped"), "B: not 'stopped' after run returned: " + after);
    tun.destroy();
    check(isOpen(fd), "B: destroy closed the caller's fd");
    closeFd(fd);
    synchronized (threads) {
      check(calls.get() > 0, "B: protect was never called");
      check(threads.size() == 1 && threads.get(0).equals(r.thread.getName()),
          "B: protect ran on threads " + threads + ", want only the run thread");
    }
    System.out.println("PROTECT phase=B calls=" + calls.get() + " ok=" + marked.get()
        + " tcp=" + streams.get() + " udp=" + datagrams.get()
        + " threads=" + threads + " log_lines=" + lines.get());
  }

  /**
   * Phase C1: a Protector that says yes but does not mark (an app that
   * forgot VpnService.protect): the core's own connection goes into the
   * TUN, the core sees it as a flow to the server and refuses it. This is
   * the loop phase B's protect prevents.
   */
  static void unprotectedLoopIsRefused() throws Exception {
    int fd = openTunOrFail();
    AtomicInteger calls = new AtomicInteger(), lines = new AtomicInteger();
    VlessTun tun = VlessTun.create(config, "jni-test.toml", fd, VlessTun.LOG_FROM_CONFIG, null,
        sock -> {
          calls.incrementAndGet();
          return true;
        }, logger("C1", lines));
    Runner r = new Runner(tun, "vless-tun-run-C1");
    r.waitRunning();
    StringBuilder out = new StringBuilder();
    int rc = curl(urls.get(0), 5, out);
    check(rc != 0, "C1: curl through an unprotected core succeeded: " + out);
    String stats = tun.statsJson();
    System.out.println("STATS[C1] " + stats);
    long loops = num(stats, "tcp", "loops_refused");
    check(calls.get() > 0, "C1: protect was never called");
    check(loops > 0, "C1: tcp.loops_refused is 0: the outer connection did not enter the TUN");
    ok("C1: without a mark the core's connection came back through the TUN: curl exit " + rc
        + ", tcp.loops_refused=" + loops);
    r.stopFromOtherThread();
    tun.destroy();
    closeFd(fd);
    System.out.println("PROTECT phase=C1 calls=" + calls.get() + " ok=0 loops_refused=" + loops);
  }

  /** Phase C2: a Protector and a Logger that throw: failures, never a crash. */
  static void throwingCallbacks() throws Exception {
    int fd = openTunOrFail();
    AtomicInteger calls = new AtomicInteger(), logs = new AtomicInteger();
    VlessTun tun = VlessTun.create(config, "jni-test.toml", fd, VlessTun.LOG_FROM_CONFIG, null,
        sock -> {
          calls.incrementAndGet();
          throw new RuntimeException("protector failure " + sock);
        },
        (level, message) -> {
          logs.incrementAndGet();
          throw new IllegalStateException("logger failure");
        });
    Runner r = new Runner(tun, "vless-tun-run-C2");
    r.waitRunning();
    StringBuilder out = new StringBuilder();
    int rc = curl(urls.get(0), 5, out);
    check(rc != 0, "C2: curl succeeded though protect threw: " + out);
    check(calls.get() > 0, "C2: protect was never called");
    check(logs.get() > 0, "C2: the logger was never called");
    String stats = tun.statsJson(); // the core still answers
    System.out.println("STATS[C2] " + stats);
    r.stopFromOtherThread();
    tun.destroy();
    closeFd(fd);
    ok("C2: protect threw " + calls.get() + " times, the logger " + logs.get()
        + " times: curl exit " + rc + ", the core kept running and stopped cleanly");
    System.out.println("PROTECT phase=C2 calls=" + calls.get() + " ok=0");
  }
}
