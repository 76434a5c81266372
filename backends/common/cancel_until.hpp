// Stopping a thread that may be blocked in a pipeslot call: cancel() reaches
// only calls already under way, so a thread caught between two calls needs
// another one. This repeats it until the thread says it is done.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace pipeslot::detail {

// `lock` holds the mutex under which done() is read; `woken` is notified when it changes.
template <class Done, class Cancel>
void cancel_until(std::unique_lock<std::mutex>& lock, std::condition_variable& woken, Done done, Cancel cancel) {
    while (!done()) {
        lock.unlock();
        cancel();
        lock.lock();
        woken.wait_for(lock, std::chrono::milliseconds(20), done);
    }
}

}  // namespace pipeslot::detail
