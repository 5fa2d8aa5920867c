// The service manager's readiness protocol (systemd's sd_notify, without
// libsystemd): a datagram such as "READY=1" to the AF_UNIX socket named by
// $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace). Without
// the variable (not run by systemd with Type=notify) nothing is sent.
// One non-blocking sendto on a local socket: safe on the loop.
#pragma once

#include <string_view>

namespace vt::event {

// True when the state was handed to the socket; false when there is no
// $NOTIFY_SOCKET or it could not be reached (then a caller goes on: the
// service manager reports the missing readiness itself).
bool notifyServiceManager(std::string_view state);

}  // namespace vt::event
