// A minimal check macro for the torch-free native tests run by ctest.
#pragma once

#include <cstdio>

static int g_failures = 0;

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      ++g_failures;                                                     \
      std::fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                \
      std::fprintf(stderr, "\n");                                       \
    }                                                                   \
  } while (0)

inline int finish(const char* name) {
  std::printf("%s: %s (%d failure(s))\n", name, g_failures ? "FAILED" : "ok", g_failures);
  return g_failures ? 1 : 0;
}
