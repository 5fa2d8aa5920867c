#include "config/client_rules_config.h"

#include <string>
#include <utility>
#include <vector>

#include "config/config_util.h"
#include "route/geoip.h"
#include "route/rule_set.h"

namespace vt::config {
namespace {

constexpr const char* kActions = "\"proxy\", \"direct\" or \"block\"";
constexpr const char* kStyles = "\"reset\" or \"drop\"";

std::string ruleKey(size_t index, const char* key) {
  return "route.rules[" + std::to_string(index + 1) + "]" + (key[0] != '\0' ? "." : "") + key;
}

// A string, or an array of strings (non-empty, each non-empty). Ports may
// also be integers: `port = 443` and `port = [80, "8000-8100"]`.
bool stringList(TomlReader& r, const toml::node& n, const std::string& key, bool ints,
                std::vector<std::string>& out) {
  const char* expect = ints ? "a port, a range \"lo-hi\" or an array of them"
                            : "a string or an array of strings";
  auto one = [&](const toml::node& v) {
    if (const auto* s = v.as_string()) {
      if (s->get().empty()) {
        r.fail(v, key, std::string("expected ") + expect + ", got an empty string");
        return false;
      }
      out.push_back(s->get());
      return true;
    }
    if (const auto* i = v.as_integer(); ints && i != nullptr) {
      if (i->get() < 0 || i->get() > 65535) {
        r.fail(v, key, "expected a port in 0..65535, got " + std::to_string(i->get()));
        return false;
      }
      out.push_back(std::to_string(i->get()));
      return true;
    }
    r.fail(v, key, std::string("expected ") + expect + ", got " + TomlReader::typeName(v));
    return false;
  };
  if (const auto* a = n.as_array()) {
    if (a->empty()) {
      r.fail(n, key, std::string("expected ") + expect + ", got an empty array");
      return false;
    }
    for (const toml::node& v : *a) {
      if (!one(v)) return false;
    }
    return true;
  }
  return one(n);
}

void readRule(TomlReader& r, size_t index, const toml::table& t, route::RuleSpec& rule) {
  r.checkKeys(t, ruleKey(index, ""),
              {"ip_cidr", "geoip", "domain", "domain_suffix", "domain_keyword", "domain_regex", "port",
               "network", "action", "block_style"});
  if (r.failed()) return;
  const std::pair<const char*, std::vector<std::string>*> lists[] = {
      {"ip_cidr", &rule.ip_cidr},
      {"geoip", &rule.geoip},
      {"domain", &rule.domain},
      {"domain_suffix", &rule.domain_suffix},
      {"domain_keyword", &rule.domain_keyword},
      {"domain_regex", &rule.domain_regex},
      {"port", &rule.port},
      {"network", &rule.network},
  };
  for (const auto& [name, out] : lists) {
    const toml::node* n = t.get(name);
    if (n == nullptr) continue;
    if (!stringList(r, *n, ruleKey(index, name), std::string_view(name) == "port", *out)) return;
  }
  const toml::node* action = t.get("action");
  if (action == nullptr) {
    r.fail(&t.source(), ruleKey(index, "action"),
           std::string("missing; expected ") + kActions);
    return;
  }
  const std::string* a = r.str(*action, ruleKey(index, "action"), kActions);
  if (a == nullptr) return;
  rule.action = *a;
  if (const toml::node* n = t.get("block_style")) {
    const std::string* s = r.str(*n, ruleKey(index, "block_style"), kStyles);
    if (s == nullptr) return;
    if (rule.action != "block") {
      r.fail(*n, ruleKey(index, "block_style"), "only for action = \"block\"");
      return;
    }
    rule.block_style = *s;
  }
}

}  // namespace

void readRules(TomlReader& r, const toml::table& t, const std::string& base_dir,
               ClientRulesConfig& out) {
  route::RuleSetSpec spec;
  std::vector<const toml::table*> where;  // each rule's table, for errors
  if (const toml::node* n = t.get("rules")) {
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      r.fail(*n, "route.rules",
             "expected [[route.rules]] tables, got " + TomlReader::typeName(*n));
      return;
    }
    for (const toml::node& v : *a) {
      const toml::table* rt = v.as_table();
      if (rt == nullptr) {
        r.fail(v, ruleKey(where.size(), ""),
               "expected a table ([[route.rules]]), got " + TomlReader::typeName(v));
        return;
      }
      route::RuleSpec rule;
      readRule(r, where.size(), *rt, rule);
      if (r.failed()) return;
      spec.rules.push_back(std::move(rule));
      where.push_back(rt);
    }
  }
  const toml::node* def = t.get("default_action");
  if (def != nullptr) {
    const std::string* s = r.str(*def, "route.default_action", kActions);
    if (s == nullptr) return;
    spec.default_action = *s;
  }
  const toml::node* style = t.get("block_style");
  if (style != nullptr) {
    const std::string* s = r.str(*style, "route.block_style", kStyles);
    if (s == nullptr) return;
    spec.default_block_style = *s;
  }
  size_t failed = SIZE_MAX;
  auto built = route::RuleSet::build(spec, &failed);
  if (!built) {
    std::string msg = built.error().message;
    if (failed < where.size()) {
      // "rule 2: ip_cidr entry ..." -> route.rules[3]: ip_cidr entry ...
      const std::string prefix = "rule " + std::to_string(failed) + ": ";
      if (msg.compare(0, prefix.size(), prefix) == 0) msg.erase(0, prefix.size());
      r.fail(&where[failed]->source(), ruleKey(failed, ""), msg);
    } else if (msg.find("default_block_style") != std::string::npos) {
      r.fail(style != nullptr ? &style->source() : nullptr, "route.block_style",
             "expected " + std::string(kStyles) + ", got \"" + spec.default_block_style + "\"");
    } else {
      r.fail(def != nullptr ? &def->source() : nullptr, "route.default_action",
             "expected " + std::string(kActions) + ", got \"" + spec.default_action + "\"");
    }
    return;
  }
  const toml::node* db = t.get("geoip_database");
  std::string db_path;
  if (db != nullptr) {
    const std::string* s = r.str(*db, "route.geoip_database", "a MaxMind-format (.mmdb) file path");
    if (s == nullptr) return;
    if (s->empty()) {
      r.fail(*db, "route.geoip_database", "expected a .mmdb file path, got an empty string");
      return;
    }
    db_path = resolvePath(base_dir, *s);
  }
  if (built.value().usesGeoip()) {
    if (db == nullptr) {
      size_t first = 0;
      while (first + 1 < spec.rules.size() && spec.rules[first].geoip.empty()) ++first;
      r.fail(&where[first]->source(), ruleKey(first, "geoip"),
             "needs route.geoip_database (a MaxMind-format country database)");
      return;
    }
    auto geo = route::GeoIp::open(db_path);
    if (!geo) {
      r.fail(*db, "route.geoip_database", geo.error().message);
      return;
    }
    out.geoip = std::shared_ptr<const route::GeoIp>(std::move(geo).value());
    out.geoip_path = db_path;
  }
  if (const toml::node* n = t.get("dial_by_name")) {
    auto v = r.boolean(*n, "route.dial_by_name");
    if (!v) return;
    out.dial_by_name = *v;
  }
  if (const toml::node* n = t.get("want_ip_ttl")) {
    auto ms = r.duration(*n, "route.want_ip_ttl");
    if (!ms) return;
    out.want_ip_ttl_ms = *ms;
  }
  if (const toml::node* n = t.get("direct_interface")) {
    const char* expect = "an interface name (1..15 characters, no '/' or spaces)";
    const std::string* s = r.str(*n, "route.direct_interface", expect);
    if (s == nullptr) return;
    if (s->empty() || s->size() > 15 || s->find_first_of("/ \t") != std::string::npos) {
      r.fail(*n, "route.direct_interface", std::string("expected ") + expect + ", got \"" + *s + "\"");
      return;
    }
    out.direct_interface = *s;
  }
  out.count = spec.rules.size();
  out.default_action = spec.default_action;
  if (spec.rules.empty() && spec.default_action == "proxy") return;  // nothing to decide
  out.set = std::make_shared<const route::RuleSet>(std::move(built).value());
}

}  // namespace vt::config
