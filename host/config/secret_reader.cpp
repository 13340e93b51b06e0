#include "config/secret_reader.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mcphost::config {

Expected<std::string, std::string> readSecret(const std::string& name, const SecretSource& source) {
  if (!source.env.empty()) {
    const char* value = std::getenv(source.env.c_str());
    if (value == nullptr) {
      return unexpected("secret '" + name + "': environment variable " + source.env + " is not set");
    }
    return std::string(value);
  }
  std::ifstream in(source.file, std::ios::binary);
  if (!in) return unexpected("secret '" + name + "': cannot read " + source.file);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string value = buffer.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

}  // namespace mcphost::config
