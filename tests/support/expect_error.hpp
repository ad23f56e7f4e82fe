#pragma once
// The check of every misuse test: a call throws exactly the documented snap::Error subclass,
// and its message reads "snap: <argument>: expected <expected>, got <given>" (core/error.hpp).

#include <gtest/gtest.h>

#include <snap/snap.hpp>

#include <string>
#include <string_view>
#include <typeinfo>

namespace snap::test {

/// The name of the snap::Error subclass of `error`, for failure messages.
inline std::string kindOf(const Error& error) {
  if (typeid(error) == typeid(ShapeError)) return "ShapeError";
  if (typeid(error) == typeid(ValueError)) return "ValueError";
  if (typeid(error) == typeid(UsageError)) return "UsageError";
  if (typeid(error) == typeid(NonFiniteError)) return "NonFiniteError";
  if (typeid(error) == typeid(FormatError)) return "FormatError";
  return "snap::Error";
}

/// Checks that `call` throws exactly E with the message "snap: <argument>: expected …, got …".
/// Failures name the caller's line: __builtin_FILE() and __builtin_LINE() as default arguments
/// are evaluated where the call is, in GCC and Clang alike (std::source_location would do the
/// same, but Clang 14 cannot compile libstdc++ 12's).
template <class E, class F>
void expectError(F&& call, std::string_view argument, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  static_assert(std::is_base_of_v<Error, E>);
  const std::string expectedKind = kindOf(E(""));
  try {
    call();
  } catch (const Error& error) {
    const std::string message = error.what();
    if (typeid(error) != typeid(E))
      ADD_FAILURE_AT(file, line)
          << "threw " << kindOf(error) << " instead of " << expectedKind << ": " << message;
    const std::string head = "snap: " + std::string(argument) + ": expected ";
    if (message.rfind(head, 0) != 0 || message.find(", got ") == std::string::npos)
      ADD_FAILURE_AT(file, line)
          << "the message does not read \"" << head << "…, got …\": " << message;
    return;
  } catch (const std::exception& error) {
    ADD_FAILURE_AT(file, line) << "threw a std::exception that is not a snap::Error: " << error.what();
    return;
  }
  ADD_FAILURE_AT(file, line) << "no exception; expected " << expectedKind << " naming " << argument;
}

}  // namespace snap::test
