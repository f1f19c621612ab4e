// GB_CHECK: an invariant of the program itself. Failing it is a bug: it prints the
// expression, file and line, and aborts. Never use it on what the outside world
// controls (files, flags, network, SQLite): those are gb::Status values.
#pragma once

#include <cstdio>
#include <cstdlib>

#define GB_CHECK(cond)                                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: GB_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
