// Loads one connector library with Boost.DLL and negotiates the C ABI. Every failure is a
// message an operator can act on: it names the file, the symbol and both ABI versions.
#pragma once

#include <boost/dll/shared_library.hpp>
#include <string>

#include "common/expected.hpp"
#include "mcphost/connector.h"

namespace mcphost::worker {

struct LoadedPlugin {
  boost::dll::shared_library library;  // keeps the code mapped while the table is used
  const mcph_connector_api_v1* api = nullptr;
};

struct LoadFailure {
  std::string stage;  // "load", "entry", "abi"
  std::string message;
};

// rtld_now | rtld_local: a missing symbol fails here, not at the first call; the library's
// symbols never leak into the next library's namespace.
Expected<LoadedPlugin, LoadFailure> loadPlugin(const std::string& path, const std::string& expectedName);

}  // namespace mcphost::worker
