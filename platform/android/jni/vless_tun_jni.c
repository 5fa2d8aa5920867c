/* vless_tun_jni.c: the native side of net.vlesstun.VlessTun (Java), a thin
 * layer over the C API in include/vless_tun.h.
 *
 * - JNI_OnLoad caches the JavaVM, the Protector/Logger method ids and the
 *   exception classes, and registers the natives on VLESS_TUN_JNI_CLASS
 *   (a compile-time define; default net/vlesstun/VlessTun).
 * - The Java object holds a handle to a struct jni_core; the Java class
 *   serialises its lifetime (no call reaches a destroyed handle), this file
 *   still checks the states the C API reports and turns every failure into
 *   a Java exception: IllegalArgumentException for bad arguments (EINVAL,
 *   ECONFIG, ETUN), OutOfMemoryError for ENOMEM, IllegalStateException for
 *   the rest, with the C API's message.
 * - The protect and log callbacks run on the core's thread. That is the Java
 *   thread inside VlessTun.run() (or create), already attached; a callback on
 *   any other thread attaches it (AttachCurrentThread) and a thread-specific
 *   key detaches it when that thread exits (a thread must not be detached
 *   while Java frames are on its stack, so never inside run itself). A Java
 *   exception thrown by a Protector or Logger is cleared and counts as a
 *   failure (protect: the connection fails). Every callback frees its local
 *   references (run is one long native frame).
 * - Strings cross as UTF-8 byte arrays from Java; strings to Java are
 *   decoded from UTF-8 here (invalid bytes become U+FFFD), never through
 *   NewStringUTF, which expects modified UTF-8 (and aborts under CheckJNI). */
#include <jni.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vless_tun.h"

#ifndef VLESS_TUN_JNI_CLASS
#define VLESS_TUN_JNI_CLASS "net/vlesstun/VlessTun"
#endif

#ifdef __ANDROID__
typedef JNIEnv** attach_env_ptr;
#else
typedef void** attach_env_ptr;
#endif

struct jni_core {
  vless_tun* core;
  jobject protector; /* global refs, or NULL */
  jobject logger;
  /* Copies of the strings the options point to, kept for the core's life. */
  char* config_name;
  char* dns_servers;
};

static JavaVM* g_vm;
static jmethodID g_protect;        /* Protector.protect(int) */
static jmethodID g_log;            /* Logger.log(int, String) */
static jclass g_iae, g_ise, g_oom; /* global refs */
static jmethodID g_iae_init, g_ise_init;
static pthread_key_t g_detach_key;
static int g_detach_key_ok;

/* --- strings ----------------------------------------------------------- */

/* A Java string from UTF-8 bytes; invalid sequences become U+FFFD. NULL
 * (with OutOfMemoryError pending) when out of memory. */
static jstring new_string_utf8(JNIEnv* env, const char* s, size_t n) {
  jchar stack[256] = {0}; /* (zeroed only to quiet -Wmaybe-uninitialized) */
  /* Every byte gives at most one UTF-16 unit (a 4-byte sequence gives 2). */
  jchar* u = n <= sizeof stack / sizeof stack[0] ? stack : malloc(n * sizeof(jchar));
  if (!u) {
    (*env)->ThrowNew(env, g_oom, "vless-tun: no memory for a string");
    return NULL;
  }
  size_t i = 0, k = 0;
  while (i < n) {
    unsigned b = (unsigned char)s[i];
    uint32_t cp;
    size_t len;
    if (b < 0x80) {
      u[k++] = (jchar)b;
      i++;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      cp = b & 0x1F, len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      cp = b & 0x0F, len = 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
      cp = b & 0x07, len = 4;
    } else {
      u[k++] = 0xFFFD;
      i++;
      continue;
    }
    size_t j = 1;
    while (j < len && i + j < n && ((unsigned char)s[i + j] & 0xC0) == 0x80) {
      cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3F);
      j++;
    }
    if (j < len || (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      u[k++] = 0xFFFD; /* truncated, overlong, a surrogate or out of range */
      i += j;
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u[k++] = (jchar)(0xD800 | (cp >> 10));
      u[k++] = (jchar)(0xDC00 | (cp & 0x3FF));
    } else {
      u[k++] = (jchar)cp;
    }
    i += len;
  }
  jstring r = (*env)->NewString(env, u, (jsize)k);
  if (u != stack) free(u);
  return r;
}

/* A NUL-terminated copy of a Java byte[] (its length in *len). NULL with
 * *ok = 1 for a null array; NULL with *ok = 0 and an exception pending when
 * out of memory. */
static char* copy_bytes(JNIEnv* env, jbyteArray a, size_t* len, int* ok) {
  *ok = 1;
  if (len) *len = 0;
  if (!a) return NULL;
  jsize n = (*env)->GetArrayLength(env, a);
  char* p = malloc((size_t)n + 1);
  if (!p) {
    *ok = 0;
    (*env)->ThrowNew(env, g_oom, "vless-tun: no memory for an argument");
    return NULL;
  }
  (*env)->GetByteArrayRegion(env, a, 0, n, (jbyte*)p);
  if ((*env)->ExceptionCheck(env)) {
    *ok = 0;
    free(p);
    return NULL;
  }
  p[n] = '\0';
  if (len) *len = (size_t)n;
  return p;
}

/* --- exceptions -------------------------------------------------------- */

static void throw_with(JNIEnv* env, jclass cls, jmethodID init, const char* msg) {
  if ((*env)->ExceptionCheck(env)) return; /* keep the first one */
  jstring s = new_string_utf8(env, msg, strlen(msg));
  if (!s) return; /* OutOfMemoryError pending */
  jobject e = (*env)->NewObject(env, cls, init, s);
  if (e) (*env)->Throw(env, (jthrowable)e);
  (*env)->DeleteLocalRef(env, s);
  if (e) (*env)->DeleteLocalRef(env, e);
}

static void throw_state(JNIEnv* env, const char* msg) {
  throw_with(env, g_ise, g_ise_init, msg);
}
static void throw_arg(JNIEnv* env, const char* msg) {
  throw_with(env, g_iae, g_iae_init, msg);
}

/* Throws the exception for a C API code; msg (may be NULL or empty) is the
 * C API's message, else the code's name is used. */
static void throw_code(JNIEnv* env, int code, const char* msg) {
  if (!msg || !*msg) msg = vless_tun_strerror(code);
  if (!msg) msg = "vless-tun: unknown error";
  switch (code) {
    case VLESS_TUN_EINVAL:
    case VLESS_TUN_ECONFIG:
    case VLESS_TUN_ETUN: throw_arg(env, msg); break;
    case VLESS_TUN_ENOMEM:
      if (!(*env)->ExceptionCheck(env)) (*env)->ThrowNew(env, g_oom, "vless-tun: out of memory");
      break;
    default: throw_state(env, msg);
  }
}

/* Throws for a C API code, with the core's last error as the message when
 * there is one ("<code name>: <last error>"). */
static void throw_core_error(JNIEnv* env, vless_tun* core, int code) {
  char last[512];
  size_t n = core ? vless_tun_last_error(core, last, sizeof last) : 0;
  const char* name = vless_tun_strerror(code);
  if (n == 0) {
    throw_code(env, code, name);
    return;
  }
  char msg[640];
  snprintf(msg, sizeof msg, "%s: %s", name ? name : "error", last);
  throw_code(env, code, msg);
}

/* --- threads and callbacks --------------------------------------------- */

static void detach_at_exit(void* unused) {
  (void)unused;
  if (g_vm) (*g_vm)->DetachCurrentThread(g_vm);
}

/* The JNIEnv of the calling thread, attaching it when it is not a Java
 * thread (then detached when it exits). NULL if that fails. */
static JNIEnv* callback_env(void) {
  JNIEnv* env = NULL;
  jint r = (*g_vm)->GetEnv(g_vm, (void**)&env, JNI_VERSION_1_6);
  if (r == JNI_OK) return env;
  if (r != JNI_EDETACHED || !g_detach_key_ok) return NULL;
  JavaVMAttachArgs args = {JNI_VERSION_1_6, (char*)"vless-tun-native", NULL};
  if ((*g_vm)->AttachCurrentThread(g_vm, (attach_env_ptr)&env, &args) != JNI_OK) return NULL;
  if (pthread_setspecific(g_detach_key, g_vm) != 0) {
    (*g_vm)->DetachCurrentThread(g_vm);
    return NULL;
  }
  return env;
}

static int protect_cb(void* ctx, int fd) {
  struct jni_core* c = ctx;
  JNIEnv* env = callback_env();
  if (!env || !c->protector) return -1;
  /* A pending exception here belongs to someone else; calling Java with it
   * pending is illegal, so fail the socket instead. */
  if ((*env)->ExceptionCheck(env)) return -1;
  if ((*env)->PushLocalFrame(env, 8) != 0) {
    (*env)->ExceptionClear(env);
    return -1;
  }
  jboolean ok = (*env)->CallBooleanMethod(env, c->protector, g_protect, (jint)fd);
  int rc = ok ? 0 : -1;
  if ((*env)->ExceptionCheck(env)) {
    (*env)->ExceptionClear(env);
    rc = -1;
  }
  (*env)->PopLocalFrame(env, NULL);
  return rc;
}

static void log_cb(void* ctx, int level, const char* message) {
  struct jni_core* c = ctx;
  if (!c->logger || !message) return;
  JNIEnv* env = callback_env();
  if (!env || (*env)->ExceptionCheck(env)) return;
  if ((*env)->PushLocalFrame(env, 8) != 0) {
    (*env)->ExceptionClear(env);
    return;
  }
  jstring s = new_string_utf8(env, message, strlen(message));
  if (s) (*env)->CallVoidMethod(env, c->logger, g_log, (jint)level, s);
  if ((*env)->ExceptionCheck(env)) (*env)->ExceptionClear(env);
  (*env)->PopLocalFrame(env, NULL);
}

/* --- the natives ------------------------------------------------------- */

static struct jni_core* from_handle(JNIEnv* env, jlong h) {
  struct jni_core* c = (struct jni_core*)(intptr_t)h;
  if (!c || !c->core) {
    throw_state(env, "vless-tun: the core was destroyed");
    return NULL;
  }
  return c;
}

static void free_core(JNIEnv* env, struct jni_core* c) {
  if (!c) return;
  if (c->protector) (*env)->DeleteGlobalRef(env, c->protector);
  if (c->logger) (*env)->DeleteGlobalRef(env, c->logger);
  free(c->config_name);
  free(c->dns_servers);
  free(c);
}

static jlong JNICALL native_create(JNIEnv* env, jclass cls, jbyteArray config,
                                   jbyteArray config_name, jint tun_fd, jint log_level,
                                   jbyteArray dns_servers, jobject protector, jobject logger) {
  (void)cls;
  if (!config) {
    throw_arg(env, "vless-tun: config is null");
    return 0;
  }
  if (tun_fd < 0) {
    throw_arg(env, "vless-tun: the TUN fd is negative");
    return 0;
  }
  struct jni_core* c = calloc(1, sizeof *c);
  if (!c) {
    (*env)->ThrowNew(env, g_oom, "vless-tun: out of memory");
    return 0;
  }
  int ok;
  size_t config_len;
  char* cfg = copy_bytes(env, config, &config_len, &ok);
  if (ok) c->config_name = copy_bytes(env, config_name, NULL, &ok);
  if (ok) c->dns_servers = copy_bytes(env, dns_servers, NULL, &ok);
  if (ok && protector && !(c->protector = (*env)->NewGlobalRef(env, protector))) ok = 0;
  if (ok && logger && !(c->logger = (*env)->NewGlobalRef(env, logger))) ok = 0;
  if (!ok) {
    if (!(*env)->ExceptionCheck(env)) (*env)->ThrowNew(env, g_oom, "vless-tun: out of memory");
    free(cfg);
    free_core(env, c);
    return 0;
  }

  vless_tun_options o;
  vless_tun_options_init(&o);
  o.config = cfg;
  o.config_len = config_len;
  o.config_name = c->config_name;
  o.tun_fd = tun_fd;
  o.log_level = log_level;
  o.protect = c->protector ? protect_cb : NULL;
  o.log = c->logger ? log_cb : NULL;
  o.ctx = c;
  o.dns_servers = c->dns_servers;
  int code = VLESS_TUN_OK;
  char err[512] = "";
  c->core = vless_tun_create(&o, &code, err, sizeof err);
  free(cfg);
  if (!c->core) {
    free_core(env, c);
    throw_code(env, code == VLESS_TUN_OK ? VLESS_TUN_ESTART : code, err);
    return 0;
  }
  return (jlong)(intptr_t)c;
}

static void JNICALL native_run(JNIEnv* env, jclass cls, jlong h) {
  (void)cls;
  struct jni_core* c = from_handle(env, h);
  if (!c) return;
  int rc = vless_tun_run(c->core);
  if (rc == VLESS_TUN_ESTATE) {
    throw_state(env, "vless-tun: run: a core runs once (it already ran or is running)");
  } else if (rc != VLESS_TUN_OK) {
    throw_core_error(env, c->core, rc);
  }
}

static void JNICALL native_stop(JNIEnv* env, jclass cls, jlong h) {
  (void)cls;
  struct jni_core* c = from_handle(env, h);
  if (!c) return;
  int rc = vless_tun_stop(c->core);
  /* Stopping a stopped core is not an error for Java callers. */
  if (rc < 0 && rc != VLESS_TUN_ESTOPPED) throw_core_error(env, c->core, rc);
}

static void JNICALL native_destroy(JNIEnv* env, jclass cls, jlong h) {
  (void)cls;
  struct jni_core* c = from_handle(env, h);
  if (!c) return;
  int rc = vless_tun_destroy(c->core);
  if (rc != VLESS_TUN_OK) {
    throw_code(env, rc,
               "vless-tun: destroy while run is executing: stop it and wait for run to return");
    return;
  }
  c->core = NULL;
  free_core(env, c);
}

static jstring JNICALL native_stats_json(JNIEnv* env, jclass cls, jlong h) {
  (void)cls;
  struct jni_core* c = from_handle(env, h);
  if (!c) return NULL;
  char* s = vless_tun_stats_json(c->core);
  if (!s) {
    (*env)->ThrowNew(env, g_oom, "vless-tun: no memory for the stats");
    return NULL;
  }
  jstring r = new_string_utf8(env, s, strlen(s));
  vless_tun_free(s);
  return r;
}

static void JNICALL native_network_changed(JNIEnv* env, jclass cls, jlong h, jbyteArray ifname) {
  (void)cls;
  struct jni_core* c = from_handle(env, h);
  if (!c) return;
  int ok;
  char* name = copy_bytes(env, ifname, NULL, &ok);
  if (!ok) return;
  int rc = vless_tun_network_changed(c->core, name);
  free(name);
  /* A core that is stopping has no network to change: not an error. */
  if (rc < 0 && rc != VLESS_TUN_ESTOPPED) throw_core_error(env, c->core, rc);
}

static jstring JNICALL native_last_error(JNIEnv* env, jclass cls, jlong h) {
  (void)cls;
  struct jni_core* c = from_handle(env, h);
  if (!c) return NULL;
  char buf[512];
  size_t n = vless_tun_last_error(c->core, buf, sizeof buf);
  if (n == 0) return NULL;
  if (n < sizeof buf) return new_string_utf8(env, buf, n);
  char* big = malloc(n + 1);
  if (!big) return new_string_utf8(env, buf, strlen(buf)); /* the truncated one */
  vless_tun_last_error(c->core, big, n + 1); /* NUL-terminated even if it grew meanwhile */
  jstring r = new_string_utf8(env, big, strlen(big));
  free(big);
  return r;
}

static jstring JNICALL native_version(JNIEnv* env, jclass cls) {
  (void)cls;
  const char* v = vless_tun_version();
  if (!v) v = "";
  return new_string_utf8(env, v, strlen(v));
}

#define PROTECTOR_SIG "L" VLESS_TUN_JNI_CLASS "$Protector;"
#define LOGGER_SIG "L" VLESS_TUN_JNI_CLASS "$Logger;"

static const JNINativeMethod k_methods[] = {
    {(char*)"nativeCreate", (char*)"([B[BII[B" PROTECTOR_SIG LOGGER_SIG ")J", (void*)native_create},
    {(char*)"nativeRun", (char*)"(J)V", (void*)native_run},
    {(char*)"nativeStop", (char*)"(J)V", (void*)native_stop},
    {(char*)"nativeDestroy", (char*)"(J)V", (void*)native_destroy},
    {(char*)"nativeStatsJson", (char*)"(J)Ljava/lang/String;", (void*)native_stats_json},
    {(char*)"nativeNetworkChanged", (char*)"(J[B)V", (void*)native_network_changed},
    {(char*)"nativeLastError", (char*)"(J)Ljava/lang/String;", (void*)native_last_error},
    {(char*)"nativeVersion", (char*)"()Ljava/lang/String;", (void*)native_version},
};

/* A global ref to a class (NULL with an exception pending on failure). */
static jclass global_class(JNIEnv* env, const char* name) {
  jclass local = (*env)->FindClass(env, name);
  if (!local) return NULL;
  jclass g = (jclass)(*env)->NewGlobalRef(env, local);
  (*env)->DeleteLocalRef(env, local);
  return g;
}

static void drop_globals(JNIEnv* env) {
  if (g_iae) (*env)->DeleteGlobalRef(env, g_iae);
  if (g_ise) (*env)->DeleteGlobalRef(env, g_ise);
  if (g_oom) (*env)->DeleteGlobalRef(env, g_oom);
  g_iae = g_ise = g_oom = NULL;
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void* reserved) {
  (void)reserved;
  JNIEnv* env = NULL;
  if ((*vm)->GetEnv(vm, (void**)&env, JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
  g_vm = vm;
  if (!g_detach_key_ok && pthread_key_create(&g_detach_key, detach_at_exit) == 0)
    g_detach_key_ok = 1;

  g_iae = global_class(env, "java/lang/IllegalArgumentException");
  g_ise = g_iae ? global_class(env, "java/lang/IllegalStateException") : NULL;
  g_oom = g_ise ? global_class(env, "java/lang/OutOfMemoryError") : NULL;
  if (!g_oom) goto fail;
  g_iae_init = (*env)->GetMethodID(env, g_iae, "<init>", "(Ljava/lang/String;)V");
  g_ise_init = (*env)->GetMethodID(env, g_ise, "<init>", "(Ljava/lang/String;)V");
  if (!g_iae_init || !g_ise_init) goto fail;

  jclass protector = (*env)->FindClass(env, VLESS_TUN_JNI_CLASS "$Protector");
  if (!protector) goto fail;
  g_protect = (*env)->GetMethodID(env, protector, "protect", "(I)Z");
  (*env)->DeleteLocalRef(env, protector);
  jclass logger = g_protect ? (*env)->FindClass(env, VLESS_TUN_JNI_CLASS "$Logger") : NULL;
  if (!logger) goto fail;
  g_log = (*env)->GetMethodID(env, logger, "log", "(ILjava/lang/String;)V");
  (*env)->DeleteLocalRef(env, logger);
  if (!g_log) goto fail;

  jclass cls = (*env)->FindClass(env, VLESS_TUN_JNI_CLASS);
  if (!cls) goto fail;
  jint r =
      (*env)->RegisterNatives(env, cls, k_methods, (jint)(sizeof k_methods / sizeof k_methods[0]));
  (*env)->DeleteLocalRef(env, cls);
  if (r != JNI_OK) goto fail;
  return JNI_VERSION_1_6;

fail:
  /* The pending NoClassDefFoundError / NoSuchMethodError explains it;
   * System.loadLibrary then throws UnsatisfiedLinkError. */
  drop_globals(env);
  return JNI_ERR;
}

JNIEXPORT void JNICALL JNI_OnUnload(JavaVM* vm, void* reserved) {
  (void)reserved;
  JNIEnv* env = NULL;
  if ((*vm)->GetEnv(vm, (void**)&env, JNI_VERSION_1_6) == JNI_OK) drop_globals(env);
}
