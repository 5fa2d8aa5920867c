// NetworkMonitor's rtnetlink parser: any bytes, any ignore settings; never
// reads out of bounds, and the answer does not depend on the buffer's
// alignment (messages are copied out, never cast in place).
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "network_monitor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  int ignoreIfindex = data[0] % 8;
  uint32_t ignoreTable = data[1] % 2 == 0 ? 0 : 254u + data[2] % 4;
  data += 3;
  size -= 3;
  std::string why;
  bool a = vt::platform::NetworkMonitor::countsAsChange(data, size, ignoreIfindex, ignoreTable, &why);
  vt::fuzz::check(a == !why.empty(), "a change names its reason");
  // The same bytes at an odd address.
  std::vector<uint8_t> shifted(size + 1);
  std::memcpy(shifted.data() + 1, data, size);
  bool b = vt::platform::NetworkMonitor::countsAsChange(shifted.data() + 1, size, ignoreIfindex,
                                                        ignoreTable, nullptr);
  vt::fuzz::check(a == b, "alignment changed the answer");
  return 0;
}
