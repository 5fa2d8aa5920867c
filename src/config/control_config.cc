#include "config/control_config.h"

#include <sys/un.h>

namespace vt::config {

void readControl(TomlReader& r, const toml::node& n, const std::string& base_dir, ControlConfig& c) {
  const toml::table* t = n.as_table();
  if (t == nullptr) {
    r.fail(n, "control", "expected a table [control], got " + TomlReader::typeName(n));
    return;
  }
  r.checkKeys(*t, "control", {"socket", "group"});
  if (r.failed()) return;
  if (const toml::node* s = t->get("socket")) {
    const std::string* v = r.str(*s, "control.socket", "a path for the Unix socket");
    if (v == nullptr) return;
    std::string path = resolvePath(base_dir, *v);
    if (v->empty() || v->find('\0') != std::string::npos) {
      r.fail(*s, "control.socket", "expected a path for the Unix socket, got \"\"");
      return;
    }
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      r.fail(*s, "control.socket",
             "expected a path of at most " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                 " bytes (a Unix socket's limit), got " + std::to_string(path.size()));
      return;
    }
    c.socket = std::move(path);
  }
  if (const toml::node* g = t->get("group")) {
    const std::string* v = r.str(*g, "control.group", "a group name");
    if (v == nullptr) return;
    bool ok = !v->empty() && v->size() <= 64;
    for (unsigned char ch : *v) ok = ok && ch > 0x20 && ch < 0x7f && ch != ':';
    if (!ok) {
      r.fail(*g, "control.group", "expected a group name (1-64 printable characters, no ':')");
      return;
    }
    c.group = *v;
  }
}

}  // namespace vt::config
