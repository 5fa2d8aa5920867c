// The command line both programs share: `-c FILE`, `--check -c FILE`,
// `--control PATH`, `--version`, `--help`. Usage errors exit 2, as documented.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

namespace vt::app {

struct CommandLine {
  std::string config_path;
  bool check_only = false;
  std::string control_path;  // --control PATH: overrides [control] socket
};

// Parses argv. Returns an exit code when main() should return at once
// (help, version, usage error), nullopt when `out` is ready to use.
// `usage(FILE*)` prints the program's own usage text.
std::optional<int> parseCommandLine(int argc, char** argv, const char* program,
                                    const char* version, void (*usage)(FILE*), CommandLine& out);

}  // namespace vt::app
