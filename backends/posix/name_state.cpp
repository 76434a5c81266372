#include "name_state.hpp"

#include "../common/access.hpp"

#include <algorithm>
#include <limits>

namespace pipeslot::posix {

Nanos steady_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}


std::error_code NameState::add(InstanceKey key, const detail::InstanceParams& wanted, Nanos now) {
    if (!instances_.empty()) {
        if (wanted.first_instance) return errc::access_denied;  // Windows: ERROR_ACCESS_DENIED
        if (wanted.type != params_.type || wanted.access != params_.access ||
            wanted.allow_other_users != params_.allow_other_users)
            return errc::access_denied;
        if (params_.max_instances != unlimited_instances && instances_.size() >= params_.max_instances)
            return errc::too_many_instances;
    } else {
        params_ = wanted;
    }
    instances_[key] = {wanted, now};
    return {};
}

void NameState::restore(InstanceKey key, const detail::InstanceParams& params, Nanos listening_since) {
    if (instances_.empty()) params_ = params;
    instances_[key] = {params, listening_since};
}

void NameState::remove(InstanceKey key) { instances_.erase(key); }

void NameState::remove_member(MemberId member) {
    std::erase_if(instances_, [&](const auto& entry) { return entry.first.member == member; });
}

void NameState::listen(InstanceKey key, Nanos since) {
    if (auto it = instances_.find(key); it != instances_.end()) it->second.listening_since = since;
}

InstanceKey NameState::take(InstanceKey key) {
    instances_[key].listening_since = -1;
    return key;
}

const NameState::Instance* NameState::find(InstanceKey key) const {
    const auto it = instances_.find(key);
    return it == instances_.end() ? nullptr : &it->second;
}

std::optional<InstanceKey> NameState::longest_listening() const {
    std::optional<InstanceKey> best;
    Nanos since = std::numeric_limits<Nanos>::max();
    for (const auto& [key, instance] : instances_) {
        if (instance.listening_since >= 0 && instance.listening_since < since) {
            since = instance.listening_since;
            best = key;
        }
    }
    return best;
}

NameState::Decision NameState::open(ClientId client, const detail::OpenRequest& request, Nanos now) {
    if (instances_.empty()) return {Decision::refuse, {}, errc::not_found};
    if (request.wait_only) {  // WaitNamedPipe checks neither access nor mode, and takes nothing
        if (waiting_.empty() && longest_listening()) return {Decision::free, {}, {}};
        return wait(client, request, now, errc::timed_out);
    }
    if (request.remote && params_.reject_remote) return {Decision::refuse, {}, errc::access_denied};
    if (request.message_read_mode && params_.type == PipeType::byte)
        return {Decision::refuse, {}, errc::invalid_argument};
    // Clients already waiting come first: a newcomer never overtakes them.
    // As Windows: a free instance first (else busy), then the access (the
    // instance then stays free).
    if (waiting_.empty()) {
        if (const auto key = longest_listening()) {
            if (!detail::client_access_allowed(params_.access, request.access))
                return {Decision::refuse, {}, errc::access_denied};
            return {Decision::connect, take(*key), {}};
        }
    }
    return wait(client, request, now, errc::pipe_busy);
}

NameState::Decision NameState::wait(ClientId client, const detail::OpenRequest& request, Nanos now, errc at_once) {
    const std::int64_t wait_ms = request.use_server_default_wait ? params_.default_wait_ms
                                 : request.wait_ms == detail::wait_forever_ms ? -1
                                                                               : std::int64_t{request.wait_ms};
    if (wait_ms == 0) return {Decision::refuse, {}, at_once};
    // Waits past ~292 years are forever (and cannot overflow).
    const bool forever = wait_ms < 0 || wait_ms > (std::numeric_limits<Nanos>::max() - now) / 1'000'000;
    waiting_.push_back({client, forever ? std::numeric_limits<Nanos>::max() : now + wait_ms * 1'000'000,
                        request.wait_only, request.access});
    return {Decision::wait, {}, {}};
}

std::vector<NameState::Served> NameState::serve_waiting() {
    std::vector<Served> served;
    while (!waiting_.empty()) {
        const auto key = longest_listening();
        if (!key) break;
        const Waiter w = waiting_.front();
        waiting_.pop_front();
        if (w.wait_only) served.push_back({w.client, std::nullopt, {}});
        else if (!detail::client_access_allowed(params_.access, w.access)) served.push_back({w.client, std::nullopt, errc::access_denied});
        else served.push_back({w.client, take(*key), {}});
    }
    return served;
}

std::vector<NameState::Expired> NameState::expire_waiting(Nanos now) {
    std::vector<Expired> expired;
    std::erase_if(waiting_, [&](const Waiter& w) {
        // With no instance left the name is gone: nothing to wait for.
        if (w.until > now && !instances_.empty()) return false;
        const errc why = instances_.empty() ? errc::not_found : w.wait_only ? errc::timed_out : errc::pipe_busy;
        expired.push_back({w.client, why});
        return true;
    });
    return expired;
}

void NameState::forget_client(ClientId client) {
    std::erase_if(waiting_, [&](const Waiter& w) { return w.client == client; });
}

std::optional<Nanos> NameState::next_expiry() const {
    std::optional<Nanos> first;
    for (const auto& w : waiting_)
        if (!first || w.until < *first) first = w.until;
    return first;
}

}  // namespace pipeslot::posix
