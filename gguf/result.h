// Error values shared by every layer.
//
// Library code never throws across its API and never exits: a failing call returns an
// Error whose message names the file, key, tensor or field and the bad value. Only the
// server turns messages into HTTP codes; only tools/ turns them into exit statuses.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace hearth {

struct Error {
  std::string message;
};

// A value or an Error. Deliberately tiny: value() on an error is a programming bug
// and trips HEARTH_CHECK, never undefined behaviour.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}           // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}       // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }
  const std::string& message() const { return error().message; }

 private:
  void check() const;
  std::variant<T, Error> v_;
};

// Success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : err_(std::move(error.message)), failed_(true) {}  // NOLINT
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  Error error() const { return Error{err_}; }
  const std::string& message() const { return err_; }

 private:
  std::string err_;
  bool failed_ = false;
};

// Always-on invariant check (survives NDEBUG). For programming errors only; bad input
// is reported with Error, never with this.
[[noreturn]] inline void check_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "hearth: internal check failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}
#define HEARTH_CHECK(cond) \
  ((cond) ? (void)0 : ::hearth::check_failed(#cond, __FILE__, __LINE__))

template <class T>
void Result<T>::check() const {
  HEARTH_CHECK(v_.index() == 0 && "value() called on an error Result");
}

}  // namespace hearth
