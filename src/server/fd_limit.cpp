#include "server/fd_limit.hpp"

#include <sys/resource.h>

namespace sluice {

namespace {

std::uint64_t as_u64(rlim_t v) noexcept {
    return v == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(v);
}

}  // namespace

std::uint64_t descriptors_needed(std::uint64_t max_connections, std::uint64_t workers) noexcept {
    return max_connections * 2 + 64 + workers * 8;
}

std::uint64_t open_file_limit() noexcept {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    return as_u64(rl.rlim_cur);
}

FdLimit raise_open_file_limit(std::uint64_t needed) {
    FdLimit out;
    out.needed = needed;
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return out;  // unknown: nothing to raise or to compare
    }
    out.soft_before = as_u64(rl.rlim_cur);
    out.hard = as_u64(rl.rlim_max);
    if (rl.rlim_cur != rl.rlim_max) {
        rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            rl = raised;
        }
    }
    out.soft = as_u64(rl.rlim_cur);
    if (out.soft < needed) {
        std::string w = "the open-file limit is ";
        w += std::to_string(out.soft);
        w += " (hard limit ";
        w += std::to_string(out.hard);
        w += ") but server.max_connections needs about ";
        w += std::to_string(needed);
        w += " descriptors (two per proxied request): past the limit new connections wait in "
             "the listen backlog. Raise the limit (ulimit -n, systemd LimitNOFILE=, "
             "docker --ulimit nofile=, a pod's runtime default) or lower server.max_connections";
        out.warning = std::move(w);
    }
    return out;
}

}  // namespace sluice
