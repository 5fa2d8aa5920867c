#include "command_line.h"

namespace vt::app {

std::optional<int> parseCommandLine(int argc, char** argv, const char* program,
                                    const char* version, void (*usage)(FILE*), CommandLine& out) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    }
    if (a == "-V" || a == "--version") {
      std::printf("%s\n", version);
      return 0;
    }
    if (a == "--check") {
      out.check_only = true;
    } else if (a == "--control" && i + 1 < argc) {
      out.control_path = argv[++i];
      if (out.control_path.empty() || out.control_path[0] != '/') {
        std::fprintf(stderr, "%s: --control: expected an absolute path, got '%s'\n", program,
                     out.control_path.c_str());
        return 2;
      }
    } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
      out.config_path = argv[++i];
    } else {
      std::fprintf(stderr, "%s: unexpected argument '%s'\n", program, a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (out.config_path.empty()) {
    std::fprintf(stderr, "%s: missing -c FILE\n", program);
    usage(stderr);
    return 2;
  }
  return std::nullopt;
}

}  // namespace vt::app
