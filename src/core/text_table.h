// Text for people: a column-aligned table and human units, for the status
// commands (`vless-tun status`, `vless-server status`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vt {

// Columns padded to their widest cell, two spaces apart; the last column
// is not padded. Cells are printed as given (callers pass our own text or
// addresses; control characters are replaced with '?').
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t rows() const { return rows_.size() - 1; }
  std::string render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// 1536 -> "1.5 KiB", 10 -> "10 B".
std::string humanBytes(uint64_t bytes);
// 3723000 -> "1h02m", 61000 -> "1m01s", 1500 -> "1.5s", 20 -> "20ms".
std::string humanDuration(uint64_t ms);

}  // namespace vt
