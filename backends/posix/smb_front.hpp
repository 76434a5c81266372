// Serving SMB clients through Samba's smbd (docs/samba.md). smbd hands an
// open of \\HOST\pipe\NAME to whoever listens on <ncalrpc dir>/np/<name in
// lower case>. A publication is that listening socket, in the process of
// the instances that asked for it, and one thread per connection. Each
// connection answers smbd's handshake (common/smb_handshake.hpp), opens the
// pipe as a remote client named by the session's SID, and carries messages
// between smbd's framing and the pipe.
#pragma once

#include "name_client.hpp"

#include <pipeslot/name.hpp>

#include <memory>
#include <string>
#include <system_error>

namespace pipeslot::platform {
struct Channel;
struct ChannelDeleter;
}  // namespace pipeslot::platform

namespace pipeslot::posix {

class SmbPublication;

// Publishes `name` for smbd in `directory` (empty: $PIPESLOT_SMB_DIRECTORY,
// else /run/samba/ncalrpc/np), or shares this process's publication of it.
// The last share to go removes the socket (if it is still the one made) and
// ends the connections. invalid_name for a name smbd cannot ask for (a
// slash, or too long for a socket's path), name_in_use if something else is
// at that path, not_found / access_denied for the directory.
std::error_code publish_for_smb(const PipeName& name, const std::string& directory,
                                std::shared_ptr<SmbPublication>& out);

// A client end opened for a front's network client (defined with the
// channel): the pipe takes it for a remote client, as `call` says.
std::error_code open_channel_for(const PipeName& name, const ClientOptions& options, const detail::Deadline& wait,
                                 const GatewayCall& call, std::unique_ptr<platform::Channel, platform::ChannelDeleter>& out);

}  // namespace pipeslot::posix
