#include "util/allocator.hpp"

#include <malloc.h>

// mimalloc's entry points, weak: they resolve when the binary links libmimalloc (then every
// malloc of the process is mimalloc's) and stay null otherwise, so the core library needs no
// build flag to run on either allocator.
extern "C" {
int mi_version() __attribute__((weak));
void mi_collect(bool force) __attribute__((weak));
}

namespace sluice::allocator {

std::string name() {
    if (mi_version != nullptr) {
        const int v = mi_version();  // e.g. 209 for 2.0.9
        return "mimalloc " + std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." +
               std::to_string(v % 10);
    }
    return "glibc malloc";
}

void release_free_memory() {
    if (mi_collect != nullptr) {
        mi_collect(true);
        return;
    }
    ::malloc_trim(0);
}

}  // namespace sluice::allocator
