// The C API (include/vless_tun.h) over vt::engine::Engine. Every entry
// point catches everything: no C++ exception crosses into C.
#include "vless_tun.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "config/client_config.h"
#include "engine/engine.h"

struct vless_tun {
  std::unique_ptr<vt::engine::Engine> engine;
  vless_tun_log_fn log = nullptr;
  void* ctx = nullptr;
};

namespace {

constexpr uint32_t kMagicSize = sizeof(vless_tun_options);
constexpr char kVersion[] = "vless-tun 0.1.0 (C API 1)";

void copyError(char* err, size_t errlen, const std::string& msg) {
  if (err == nullptr || errlen == 0) return;
  size_t n = msg.size() < errlen - 1 ? msg.size() : errlen - 1;
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

vless_tun* fail(int* code, int c, char* err, size_t errlen, const std::string& msg) {
  if (code != nullptr) *code = c;
  copyError(err, errlen, msg);
  return nullptr;
}

void logTrampoline(void* ctx, vt::LogLevel level, const char* message) {
  auto* t = static_cast<vless_tun*>(ctx);
  int l = static_cast<int>(level);  // kTrace=0 .. kError=4, as VLESS_TUN_LOG_*
  t->log(t->ctx, l, message);
}

}  // namespace

extern "C" {

void vless_tun_options_init(vless_tun_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->tun_fd = VLESS_TUN_FD_CALLBACKS;
  options->log_level = -1;
}

vless_tun* vless_tun_create(const vless_tun_options* options, int* code, char* err,
                            size_t errlen) {
  try {
    if (options == nullptr) return fail(code, VLESS_TUN_EINVAL, err, errlen, "options is NULL");
    // Fields appended in later versions read as zero for older callers.
    if (options->struct_size < offsetof(vless_tun_options, input_queue_packets) ||
        options->struct_size > kMagicSize * 4) {
      return fail(code, VLESS_TUN_EINVAL, err, errlen,
                  "options.struct_size is " + std::to_string(options->struct_size) +
                      ": call vless_tun_options_init() first");
    }
    vless_tun_options o;
    vless_tun_options_init(&o);
    std::memcpy(&o, options, options->struct_size < sizeof o ? options->struct_size : sizeof o);
    if (o.config == nullptr || o.config_len == 0) {
      return fail(code, VLESS_TUN_EINVAL, err, errlen, "options.config is NULL or empty");
    }
    if (o.config_len > (1u << 20)) {
      return fail(code, VLESS_TUN_EINVAL, err, errlen, "options.config is over 1 MiB");
    }
    if (o.log_level < -1 || o.log_level > 5) {
      return fail(code, VLESS_TUN_EINVAL, err, errlen,
                  "options.log_level is " + std::to_string(o.log_level) +
                      ": expected -1 (the config's) or 0..5");
    }
    if (o.flags & ~VLESS_TUN_FLAG_AUTO_ROUTE) {
      return fail(code, VLESS_TUN_EINVAL, err, errlen, "options.flags has unknown bits");
    }
    std::string name = o.config_name != nullptr ? o.config_name : "config";
    auto parsed = vt::config::parseClientConfig(std::string_view(o.config, o.config_len), name, "");
    if (!parsed.ok()) return fail(code, VLESS_TUN_ECONFIG, err, errlen, parsed.error().message);

    vt::engine::EngineOptions eo;
    eo.cfg = std::move(parsed).value();
    if (o.tun_fd >= 0) {
      eo.mode = vt::engine::TunMode::kFd;
      eo.tunFd = o.tun_fd;
    } else if (o.tun_fd == VLESS_TUN_FD_CALLBACKS) {
      eo.mode = vt::engine::TunMode::kCallbacks;
      if (o.packet_out == nullptr) {
        return fail(code, VLESS_TUN_EINVAL, err, errlen,
                    "options.packet_out is NULL: callback mode (tun_fd = -1) needs it");
      }
    } else if (o.tun_fd == VLESS_TUN_FD_CREATE) {
      eo.mode = vt::engine::TunMode::kCreate;
    } else {
      return fail(code, VLESS_TUN_EINVAL, err, errlen,
                  "options.tun_fd is " + std::to_string(o.tun_fd) +
                      ": expected an fd, VLESS_TUN_FD_CALLBACKS or VLESS_TUN_FD_CREATE");
    }
    eo.autoRoute = (o.flags & VLESS_TUN_FLAG_AUTO_ROUTE) != 0;
    if (o.dns_servers != nullptr) {
      std::string bad;
      if (!vt::engine::parseNameservers(o.dns_servers, eo.nameservers, bad)) {
        return fail(code, VLESS_TUN_EINVAL, err, errlen,
                    "options.dns_servers: \"" + bad + "\" is not an IP address");
      }
    }
    eo.inputQueuePackets = o.input_queue_packets;
    eo.inputQueueBytes = o.input_queue_bytes;
    eo.log.level = o.log_level < 0 ? eo.cfg.log_level : static_cast<vt::LogLevel>(o.log_level);

    std::unique_ptr<vless_tun> t(new (std::nothrow) vless_tun);
    if (t == nullptr) return fail(code, VLESS_TUN_ENOMEM, err, errlen, "out of memory");
    t->log = o.log;
    t->ctx = o.ctx;
    if (o.log != nullptr) {
      eo.log.fn = logTrampoline;
      eo.log.ctx = t.get();
    }
    void* ctx = o.ctx;
    if (o.packet_out != nullptr) {
      vless_tun_packets_fn fn = o.packet_out;
      eo.packetOut = [fn, ctx](const uint8_t* const* p, const size_t* l, size_t n) { fn(ctx, p, l, n); };
    }
    if (o.input_ready != nullptr) {
      vless_tun_ready_fn fn = o.input_ready;
      eo.inputReady = [fn, ctx] { fn(ctx); };
    }
    if (o.protect != nullptr) {
      vless_tun_protect_fn fn = o.protect;
      eo.protect = [fn, ctx](int fd) { return fn(ctx, fd) == 0; };
    }
    auto e = vt::engine::Engine::create(std::move(eo));
    if (!e.ok()) {
      int c = e.error().code == vt::Errc::kIo ? VLESS_TUN_ETUN
              : e.error().code == vt::Errc::kConfig ? VLESS_TUN_EINVAL
                                                    : VLESS_TUN_ECONFIG;
      return fail(code, c, err, errlen, e.error().message);
    }
    t->engine = std::move(e).value();
    if (code != nullptr) *code = VLESS_TUN_OK;
    copyError(err, errlen, "");
    return t.release();
  } catch (const std::bad_alloc&) {
    return fail(code, VLESS_TUN_ENOMEM, err, errlen, "out of memory");
  } catch (const std::exception& ex) {
    return fail(code, VLESS_TUN_ESTART, err, errlen, ex.what());
  } catch (...) {
    return fail(code, VLESS_TUN_ESTART, err, errlen, "unknown error");
  }
}

int vless_tun_run(vless_tun* core) {
  if (core == nullptr) return VLESS_TUN_EINVAL;
  try {
    switch (core->engine->run()) {
      case vt::engine::RunResult::kStopped: return VLESS_TUN_OK;
      case vt::engine::RunResult::kStartFailed: return VLESS_TUN_ESTART;
      case vt::engine::RunResult::kFatal: return VLESS_TUN_EFATAL;
      case vt::engine::RunResult::kBadState: return VLESS_TUN_ESTATE;
    }
    return VLESS_TUN_EFATAL;
  } catch (const std::bad_alloc&) {
    return VLESS_TUN_ENOMEM;
  } catch (...) {
    return VLESS_TUN_EFATAL;
  }
}

int vless_tun_stop(vless_tun* core) {
  if (core == nullptr) return VLESS_TUN_EINVAL;
  core->engine->stop();
  return VLESS_TUN_OK;
}

int vless_tun_destroy(vless_tun* core) {
  if (core == nullptr) return VLESS_TUN_OK;
  if (core->engine->running()) return VLESS_TUN_ESTATE;
  delete core;
  return VLESS_TUN_OK;
}

int vless_tun_input_packets(vless_tun* core, const uint8_t* const* packets, const size_t* lengths,
                            size_t count) {
  if (core == nullptr || (count > 0 && (packets == nullptr || lengths == nullptr))) {
    return VLESS_TUN_EINVAL;
  }
  if (core->engine->options().mode != vt::engine::TunMode::kCallbacks) return VLESS_TUN_EINVAL;
  if (count > static_cast<size_t>(INT32_MAX)) return VLESS_TUN_EINVAL;
  for (size_t i = 0; i < count; ++i) {
    if (packets[i] == nullptr || lengths[i] == 0 || lengths[i] > 65535) return VLESS_TUN_EINVAL;
  }
  if (count == 0) return 0;
  try {
    int n = core->engine->input(packets, lengths, count);
    if (n < 0) return VLESS_TUN_ESTOPPED;
    return n == 0 ? VLESS_TUN_EAGAIN : n;
  } catch (...) {
    return VLESS_TUN_ENOMEM;
  }
}

int vless_tun_network_changed(vless_tun* core, const char* ifname) {
  if (core == nullptr) return VLESS_TUN_EINVAL;
  try {
    core->engine->networkChanged(ifname != nullptr ? std::optional<std::string>(ifname)
                                                   : std::nullopt);
  } catch (...) {
    return VLESS_TUN_ENOMEM;
  }
  return VLESS_TUN_OK;
}

char* vless_tun_stats_json(vless_tun* core) {
  if (core == nullptr) return nullptr;
  try {
    std::string s = core->engine->statsJson();
    char* out = static_cast<char*>(std::malloc(s.size() + 1));
    if (out == nullptr) return nullptr;
    std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
  } catch (...) {
    return nullptr;
  }
}

size_t vless_tun_last_error(vless_tun* core, char* buf, size_t len) {
  if (core == nullptr) {
    copyError(buf, len, "core is NULL");
    return 0;
  }
  try {
    std::string s = core->engine->lastError();
    copyError(buf, len, s);
    return s.size();
  } catch (...) {
    copyError(buf, len, "");
    return 0;
  }
}

void vless_tun_free(void* p) { std::free(p); }

const char* vless_tun_strerror(int code) {
  switch (code) {
    case VLESS_TUN_OK: return "ok";
    case VLESS_TUN_EINVAL: return "invalid argument";
    case VLESS_TUN_ECONFIG: return "invalid config";
    case VLESS_TUN_ESTATE: return "not allowed in the core's state";
    case VLESS_TUN_EAGAIN: return "input queue full, try again";
    case VLESS_TUN_ETUN: return "the TUN fd is unusable";
    case VLESS_TUN_ESTART: return "the core could not start";
    case VLESS_TUN_ESTOPPED: return "the core is stopping or stopped";
    case VLESS_TUN_EFATAL: return "the core stopped on a fatal error";
    case VLESS_TUN_ENOMEM: return "out of memory";
    default: return code > 0 ? "ok (a count)" : "unknown error code";
  }
}

const char* vless_tun_version(void) { return kVersion; }

}  // extern "C"
