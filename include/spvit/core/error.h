// Exceptions that carry context: where they were raised and what the program was doing.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace spvit {

// Base of every spvit error. `context` lines are added as the exception travels up ("while loading config x.yaml").
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message), message_(message) {}
  // Adds a line of context. Rethrow with a bare `throw;` so the exception keeps its concrete type:
  //   catch (Error& e) { e.add_context("reading x"); throw; }
  Error& add_context(const std::string& what_we_were_doing);
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

class ConfigError : public Error { using Error::Error; };  // bad configuration value or key
class CommError : public Error { using Error::Error; };    // a collective failed
class CommTimeoutError : public CommError { using CommError::CommError; };  // a collective did not complete in time
class DataError : public Error { using Error::Error; };    // unreadable or inconsistent input data
// An output (checkpoint, metrics, predictions) could not be written: the message names the path and the OS reason.
class WriteError : public Error { using Error::Error; };

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
std::string with_location(const std::string& message, const char* file, int line);
}  // namespace detail

}  // namespace spvit

// SPVIT_CHECK(cond, parts...) throws spvit::Error("parts... [file:line]") when cond is false.
#define SPVIT_CHECK(cond, ...)                                                                      \
  do {                                                                                              \
    if (!(cond))                                                                                    \
      throw ::spvit::Error(::spvit::detail::with_location(::spvit::detail::concat(__VA_ARGS__),     \
                                                          __FILE__, __LINE__));                    \
  } while (0)

// SPVIT_THROW(Type, parts...) throws the given spvit error type with file:line appended.
#define SPVIT_THROW(Type, ...)                                                                      \
  throw Type(::spvit::detail::with_location(::spvit::detail::concat(__VA_ARGS__), __FILE__, __LINE__))
