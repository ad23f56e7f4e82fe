#pragma once
// A small command-line parser for the examples: --flag value pairs with defaults and help
// text, switches (--flag alone), and a clear refusal of unknown flags or bad values.

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace snap::examples {

/// A bad command line: the message says which flag and what was expected.
struct CommandLineError {
  std::string message;
};

class CommandLine {
public:
  CommandLine(std::string program, std::string summary) : m_program(std::move(program)), m_summary(std::move(summary)) {}

  /// Declares --name with a default value and a description.
  void flag(const std::string& name, const std::string& defaultValue, const std::string& description) {
    m_order.push_back(name);
    m_flags[name] = {defaultValue, description, defaultValue};
  }
  /// Declares the switch --name, off unless given (it takes no value).
  void toggle(const std::string& name, const std::string& description) {
    m_order.push_back(name);
    m_flags[name] = {"off", description, "off", true};
  }

  /// Parses argv; returns false (after printing help) when --help was given.
  bool parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        printHelp(std::cout);
        return false;
      }
      if (arg.rfind("--", 0) != 0) throw CommandLineError{"unexpected argument '" + arg + "' (flags start with --)"};
      std::string name = arg.substr(2), value;
      const auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      auto it = m_flags.find(name);
      if (it == m_flags.end()) throw CommandLineError{"unknown flag --" + name + " (see --help)"};
      if (it->second.isSwitch) {
        if (eq != std::string::npos) throw CommandLineError{"--" + name + " takes no value (give it alone to turn it on)"};
        value = "on";
      } else if (eq == std::string::npos) {
        if (i + 1 >= argc) throw CommandLineError{"--" + name + " needs a value"};
        value = argv[++i];
      }
      it->second.value = value;
      it->second.given = true;
    }
    return true;
  }

  std::string text(const std::string& name) const { return m_flags.at(name).value; }
  /// Whether --name was on the command line (not left at its default).
  bool given(const std::string& name) const { return m_flags.at(name).given; }
  /// Whether the switch --name was given.
  bool on(const std::string& name) const { return m_flags.at(name).value == "on"; }

  /// The value of --name as a number within [low, high].
  double number(const std::string& name, double low, double high) const {
    const std::string& value = text(name);
    char* end = nullptr;
    const double parsed = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(parsed >= low && parsed <= high)) {
      std::ostringstream message;
      message << "--" << name << ": expected a number in [" << low << ", " << high << "], got '" << value << "'";
      throw CommandLineError{message.str()};
    }
    return parsed;
  }
  long long integer(const std::string& name, long long low, long long high) const {
    const std::string& value = text(name);
    char* end = nullptr;
    const long long parsed = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || parsed < low || parsed > high) {
      std::ostringstream message;
      message << "--" << name << ": expected an integer in [" << low << ", " << high << "], got '" << value << "'";
      throw CommandLineError{message.str()};
    }
    return parsed;
  }
  /// The value of --name, which must be one of `choices`.
  std::string choice(const std::string& name, const std::vector<std::string>& choices) const {
    const std::string& value = text(name);
    for (const auto& c : choices)
      if (c == value) return value;
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
    throw CommandLineError{"--" + name + ": expected one of " + list + ", got '" + value + "'"};
  }

  void printHelp(std::ostream& out) const {
    out << "usage: " << m_program << " [--flag value]...\n" << m_summary << "\n\nflags (default in brackets):\n";
    // Names padded to the longest, so that every description stands apart from its flag.
    std::size_t width = 0;
    for (const auto& name : m_order) width = std::max(width, name.size() + 2);
    for (const auto& name : m_order) {
      const Flag& f = m_flags.at(name);
      out << "  --" << std::left << std::setw(static_cast<int>(width)) << name << f.description << " [" << f.defaultValue
          << "]\n";
    }
  }
  const std::string& program() const { return m_program; }

private:
  struct Flag {
    std::string defaultValue, description, value;
    bool isSwitch = false;
    bool given = false;
  };
  std::string m_program, m_summary;
  std::vector<std::string> m_order;
  std::map<std::string, Flag> m_flags;
};

}  // namespace snap::examples
