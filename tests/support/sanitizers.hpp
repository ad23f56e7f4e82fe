#pragma once
// SNAP_TEST_SANITIZED is 1 when the including file is compiled with AddressSanitizer,
// ThreadSanitizer or MemorySanitizer, whichever the compiler: GCC says so with __SANITIZE_*__,
// Clang with __has_feature. Tests use it where a sanitizer changes what can be measured (it
// owns malloc) or how fast a test runs.

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SNAP_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define SNAP_TEST_SANITIZED 1
#endif
#endif

#ifndef SNAP_TEST_SANITIZED
#define SNAP_TEST_SANITIZED 0
#endif
