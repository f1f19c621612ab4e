// Status and Result<T>: environment errors (bad input, missing files, SQLite busy,
// a lost worker) are values that say what and where; broken invariants are
// GB_CHECK failures (common/check.h). Not an exception hierarchy.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "common/check.h"

namespace gb {

struct Error {
  std::string message;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : error_(std::move(e.message)) {}  // NOLINT: implicit by design
  static Status Ok() { return {}; }
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const std::string& message() const {
    GB_CHECK(error_.has_value());
    return *error_;
  }
  Error error() const { return Error{message()}; }

 private:
  std::optional<std::string> error_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}    // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & {
    GB_CHECK(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    GB_CHECK(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    GB_CHECK(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const std::string& message() const {
    GB_CHECK(!ok());
    return std::get<1>(v_).message;
  }
  Error error() const { return Error{message()}; }
  Status status() const { return ok() ? Status::Ok() : Status(error()); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace gb

// Propagate a failed Status/Result from the enclosing function.
#define GB_RETURN_IF_ERROR(expr)                       \
  do {                                                 \
    auto&& gb_status_ = (expr);                        \
    if (!gb_status_.ok()) return ::gb::Error{gb_status_.message()}; \
  } while (0)
