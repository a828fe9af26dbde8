#pragma once

#include <string>

namespace sluice::allocator {

/// The allocator the process runs on: "mimalloc 2.0.9" when the binary is linked with it (the
/// default for `sluice`), else "glibc malloc" (tests, sanitizer builds).
std::string name();

/// Gives free memory back to the system now (after a burst of connections ended): mimalloc's
/// mi_collect, or glibc's malloc_trim.
void release_free_memory();

}  // namespace sluice::allocator
