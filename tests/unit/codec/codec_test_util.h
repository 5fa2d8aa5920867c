// Helpers for codec tests: hex vectors, chains split into slices, and the
// "every split, every prefix" check that every decoder must pass.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "buffer/buffer_chain.h"
#include "codec/address.h"

namespace vt::codec::test {

// Parses hex (spaces, newlines and | ignored); a bad vector fails the test.
std::vector<uint8_t> hex(std::string_view text);
std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts);

// Bytes [begin, end) as one slice of their own.
void appendSlice(BufferChain& c, const std::vector<uint8_t>& b, size_t begin, size_t end);
BufferChain chainOf(const std::vector<uint8_t>& b);

const char* statusName(DecodeStatus s);

// A decoder under test, reduced to a string: "need", "invalid: <why>", or
// "done <consumed> <fields...>". Equal strings mean identical results.
using Decode = std::function<std::string(const BufferChain&)>;

// `bytes` holds one unit of `unit` bytes, maybe followed by more. Checks
// that every prefix shorter than `unit` is "need", that every longer one
// gives the same "done ..." as the whole input, and that the same holds
// when the input is split into two or three slices at every boundary and
// when it arrives one byte (one slice) at a time. Returns the summary.
std::string checkDoneEverySplit(const std::vector<uint8_t>& bytes, size_t unit,
                                const Decode& decode);

// The whole input is invalid with a message, and is first found so at
// prefix length `invalid_at` (all shorter prefixes are "need"), whatever
// the slicing.
void checkInvalidAt(const std::vector<uint8_t>& bytes, size_t invalid_at, const Decode& decode);

// Every prefix (including the whole input) is "need".
void checkNeedMore(const std::vector<uint8_t>& bytes, const Decode& decode);

}  // namespace vt::codec::test
