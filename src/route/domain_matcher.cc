#include "route/domain_matcher.h"

#include <cassert>
#include <cstring>

namespace vt::route {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// A label as rules may spell it: letters, digits, '-' and '_' (SRV-style
// names and some CDNs use '_'); IDNs come as punycode.
bool validLabel(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  for (char c : label) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

}  // namespace

const char* domainKindName(DomainKind kind) noexcept {
  switch (kind) {
    case DomainKind::kFull: return "domain";
    case DomainKind::kSuffix: return "domain_suffix";
    case DomainKind::kKeyword: return "domain_keyword";
    case DomainKind::kRegex: return "domain_regex";
  }
  return "?";
}

DomainMatcher::DomainMatcher() : nodes_(1) {}

size_t DomainMatcher::normalize(std::string_view in, char* out) {
  if (!in.empty() && in.back() == '.') in.remove_suffix(1);
  if (in.empty() || in.size() > kMaxNameLength) return 0;
  for (size_t i = 0; i < in.size(); ++i) out[i] = lower(in[i]);
  return in.size();
}

uint32_t DomainMatcher::child(uint32_t parent, std::string_view label) const {
  if (label.empty() || label.size() > 63) return kNoRule;
  // Key: the parent's index as 4 raw bytes, then the label.
  char key[4 + 63];
  std::memcpy(key, &parent, 4);
  std::memcpy(key + 4, label.data(), label.size());
  auto it = children_.find(std::string_view(key, 4 + label.size()));
  return it == children_.end() ? kNoRule : it->second;
}

uint32_t DomainMatcher::addPath(std::string_view name) {
  uint32_t node = 0;
  size_t end = name.size();
  while (true) {
    size_t dot = name.rfind('.', end - 1);
    size_t begin = dot == std::string_view::npos ? 0 : dot + 1;
    std::string_view label = name.substr(begin, end - begin);
    std::string key(4 + label.size(), '\0');
    std::memcpy(key.data(), &node, 4);
    std::memcpy(key.data() + 4, label.data(), label.size());
    auto [it, inserted] =
        children_.try_emplace(std::move(key), static_cast<uint32_t>(nodes_.size()));
    if (inserted) nodes_.emplace_back();
    node = it->second;
    if (begin == 0) return node;
    end = dot;
  }
}

void DomainMatcher::addToList(uint32_t& list, uint32_t rule) {
  if (list == kNoRule) {
    list = static_cast<uint32_t>(lists_.size());
    lists_.emplace_back();
  }
  std::vector<uint32_t>& l = lists_[list];
  assert(l.empty() || l.back() <= rule);       // lookups stop at the first index too high
  if (!l.empty() && l.back() == rule) return;  // listed twice in one rule
  l.push_back(rule);
}

Status DomainMatcher::add(DomainKind kind, std::string_view entry, uint32_t rule) {
  auto bad = [&](const char* why) {
    return Error(Errc::kConfig, std::string(domainKindName(kind)) + " entry \"" +
                                    std::string(entry) + "\": " + why);
  };
  switch (kind) {
    case DomainKind::kFull:
    case DomainKind::kSuffix: {
      std::string_view e = entry;
      if (!e.empty() && e.back() == '.') e.remove_suffix(1);
      // ".example.com" as a suffix is read as "example.com": the dot is how
      // several tools spell "and its subdomains".
      if (kind == DomainKind::kSuffix && !e.empty() && e.front() == '.') e.remove_prefix(1);
      if (e.empty()) return bad("empty name");
      if (e.size() > kMaxNameLength) return bad("longer than 253 characters");
      std::string name = lowered(e);
      for (size_t begin = 0;;) {
        size_t dot = name.find('.', begin);
        std::string_view label = std::string_view(name).substr(
            begin, dot == std::string::npos ? std::string::npos : dot - begin);
        if (!validLabel(label)) return bad("not a domain name (labels are 1-63 of a-z 0-9 - _)");
        if (dot == std::string::npos) break;
        begin = dot + 1;
      }
      uint32_t node = addPath(name);
      // addPath may grow nodes_: index after it.
      addToList(kind == DomainKind::kFull ? nodes_[node].full : nodes_[node].suffix, rule);
      break;
    }
    case DomainKind::kKeyword: {
      if (entry.empty()) return bad("empty keyword");
      if (entry.size() > kMaxNameLength) return bad("longer than 253 characters");
      std::string text = lowered(entry);
      if (!keywords_.empty() && keywords_.back().rule == rule && keywords_.back().text == text)
        break;
      uint32_t index = static_cast<uint32_t>(keywords_.size());
      if (text.size() >= 3) {
        keyword_grams_[trigram(text.data())].push_back(index);
      } else {
        short_keywords_.push_back(index);
      }
      keywords_.push_back({rule, std::move(text)});
      break;
    }
    case DomainKind::kRegex: {
      if (entry.empty()) return bad("empty pattern");
      if (entry.size() > kMaxRegexLength) return bad("pattern longer than 512 characters");
      // Names are lowercased before matching, so icase (which makes
      // libstdc++'s matcher several times slower) is needed only when the
      // pattern spells an uppercase letter.
      auto flags = std::regex::ECMAScript;
      for (char c : entry) {
        if (c >= 'A' && c <= 'Z') flags |= std::regex::icase;
      }
      try {
        regexes_.push_back({rule, std::regex(entry.begin(), entry.end(), flags)});
      } catch (const std::regex_error& e) {
        return bad((std::string("invalid regex: ") + e.what()).c_str());
      }
      break;
    }
  }
  ++entries_;
  return Status::okStatus();
}

size_t DomainMatcher::memoryBytes() const {
  size_t bytes = nodes_.capacity() * sizeof(Node) + lists_.capacity() * sizeof(lists_[0]);
  for (const auto& l : lists_) bytes += l.capacity() * sizeof(uint32_t);
  // A libstdc++ hash node: next pointer, key string, value, cached hash.
  bytes += children_.bucket_count() * sizeof(void*);
  for (const auto& [key, value] : children_) {
    bytes += sizeof(void*) + sizeof(std::string) + sizeof(uint32_t) + sizeof(size_t);
    if (key.size() > 15) bytes += key.capacity() + 1;
  }
  for (const Keyword& k : keywords_)
    bytes += sizeof(Keyword) + (k.text.size() > 15 ? k.text.capacity() + 1 : 0);
  bytes +=
      keyword_grams_.bucket_count() * sizeof(void*) + short_keywords_.capacity() * sizeof(uint32_t);
  for (const auto& [gram, list] : keyword_grams_) {
    bytes += 2 * sizeof(void*) + sizeof(list) + list.capacity() * sizeof(uint32_t);
  }
  bytes += regexes_.capacity() * sizeof(Regex);
  return bytes;
}

}  // namespace vt::route
