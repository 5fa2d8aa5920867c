// The control socket's command line (docs/operations.md "Control socket"):
//   PROGRAM status [-s SOCKET] [--json]
//   PROGRAM close [-s SOCKET] ID
//   PROGRAM log-level [-s SOCKET] [LEVEL]
// SOCKET is a path (with a '/') or an instance name: RUNTIME_DIR/NAME.sock.
#pragma once

#include <string>

namespace vt::app {

struct ControlTarget {
  const char* program;     // "vless-tun"
  const char* runtimeDir;  // "/run/vless-tun"
  // The socket when -s is not given; empty: the only *.sock in runtimeDir.
  std::string defaultSocket;
};

// Whether argv[1] names one of the commands above.
bool isControlCommand(const char* arg);
// argv[0] is the command. Exit codes: 0 done, 1 an error (said on stderr),
// 2 usage.
int controlCommand(int argc, char** argv, const ControlTarget& target);

// One request, the whole reply (blocking; a CLI, not the loop). False with
// *error set when the socket cannot be reached or does not answer in time.
bool controlRequest(const std::string& path, const std::string& line, std::string* reply,
                    std::string* error, int timeoutMs = 10000);

}  // namespace vt::app
