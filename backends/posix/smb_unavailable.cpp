// Built with -Dsmb=disabled: no pipe is published to smbd.
#include "smb_front.hpp"

#include <pipeslot/error.hpp>

namespace pipeslot::posix {

class SmbPublication {};

std::error_code publish_for_smb(const PipeName&, const std::string&, std::shared_ptr<SmbPublication>&) {
    return make_error_code(errc::not_supported);
}

}  // namespace pipeslot::posix
