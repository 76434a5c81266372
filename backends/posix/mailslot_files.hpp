// A mailslot's files in the shared directory, which every local user can
// write to (sticky, like /tmp): KEY.lock (the reader's, 0600, held with flock),
// KEY.info (its maximum message size, 0644) and KEY.sock (where writers send).
// Another user may plant anything at those names first; nothing here writes,
// truncates, re-modes or deletes a file this process did not create, and
// nothing waits on a lock another user could hold (see docs/security.md).
#pragma once

#include <cstddef>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <system_error>

namespace pipeslot::posix {

// What a reader made, to be removed by it alone.
struct MailslotFiles {
    int lock_fd = -1;
    ino_t lock_inode = 0, info_inode = 0;
};

// Takes the name for a reader: creates (or takes over from a dead reader of
// this user) the lock file and writes the info file. name_in_use if a live
// reader holds it, or if the files there belong to another user or are not
// plain files of ours (a planted link: left as it is).
std::error_code claim_mailslot_name(int dir_fd, const std::string& key, std::size_t max_message_size,
                                    MailslotFiles& out);

// Removes what claim_mailslot_name made (the caller's socket first), then
// drops the lock.
void release_mailslot_name(int dir_fd, const std::string& key, MailslotFiles& files) noexcept;

// Removes `file` only if it is still the inode this process made.
void unlink_if_ours(int dir_fd, const std::string& file, ino_t inode) noexcept;

// A reader's socket, opened without following anything (O_PATH): -1 unless
// `file` is a socket with one link. `st` says whose it is. Connect or send
// to it through socket_file_address(fd), never by its name again, so that
// nothing swapped in between (a link to some daemon's socket) is reached.
int open_socket_file(int dir_fd, const std::string& file, struct stat& st);
sockaddr_un socket_file_address(int fd);

// The maximum message size the reader whose socket file is owned by
// `reader_uid` published; 0 (none known) when the info file is missing or
// belongs to anyone else.
std::size_t published_max_message_size(int dir_fd, const std::string& key, uid_t reader_uid);

}  // namespace pipeslot::posix
