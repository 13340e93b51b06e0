#include "worker/plugin_loader.hpp"

#include <dlfcn.h>

#include <cstddef>

namespace mcphost::worker {

namespace {

std::string abiText(std::uint32_t major, std::uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// The entry symbols of other majors, so a mismatch names what the library does speak.
std::string otherEntries(const boost::dll::shared_library& lib) {
  std::string found;
  for (int major = 0; major <= 9; ++major) {
    if (major == static_cast<int>(MCPH_ABI_MAJOR)) continue;
    const std::string symbol = "mcph_connector_entry_v" + std::to_string(major);
    if (lib.has(symbol))
      found += (found.empty() ? "" : ", ") + symbol + " (ABI major " + std::to_string(major) + ")";
  }
  return found;
}

}  // namespace

Expected<LoadedPlugin, LoadFailure> loadPlugin(const std::string& path, const std::string& expectedName) {
  LoadedPlugin plugin;
  boost::dll::fs::error_code ec;
  ::dlerror();
  plugin.library.load(path, ec, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  if (ec || !plugin.library.is_loaded()) {
    const char* detail = ::dlerror();
    return unexpected(LoadFailure{"load", "cannot load connector library " + path + ": " +
                                              (detail != nullptr ? std::string(detail) : ec.message())});
  }
  if (!plugin.library.has(MCPH_ENTRY_SYMBOL_V1)) {
    const std::string others = otherEntries(plugin.library);
    return unexpected(LoadFailure{
        "entry", path + " does not export " + std::string(MCPH_ENTRY_SYMBOL_V1) + " (this host speaks ABI " +
                     abiText(MCPH_ABI_MAJOR, MCPH_ABI_MINOR) + ")" +
                     (others.empty() ? "; is it an mcphost connector? build it with the mcphost SDK"
                                     : "; it exports " + others + ": rebuild it against this host's SDK")});
  }
  auto entry =
      plugin.library.get<const mcph_connector_api_v1*(std::uint32_t, std::uint32_t)>(MCPH_ENTRY_SYMBOL_V1);
  const mcph_connector_api_v1* api = entry(MCPH_ABI_MAJOR, MCPH_ABI_MINOR);
  if (api == nullptr) {
    return unexpected(LoadFailure{"abi", path + ": " + MCPH_ENTRY_SYMBOL_V1 + " refused this host (ABI " +
                                             abiText(MCPH_ABI_MAJOR, MCPH_ABI_MINOR) +
                                             "); the connector needs a newer mcphost"});
  }
  // The fixed prefix every v1 table has; anything shorter is not a v1 table.
  constexpr std::size_t kMinimum = offsetof(mcph_connector_api_v1, handle) + sizeof(api->handle);
  if (api->struct_size < kMinimum) {
    return unexpected(LoadFailure{"abi", path + ": connector table is " + std::to_string(api->struct_size) +
                                             " bytes, smaller than any ABI 1.x table (" +
                                             std::to_string(kMinimum) + ")"});
  }
  if (api->abi_major != MCPH_ABI_MAJOR) {
    return unexpected(LoadFailure{"abi", path + " was built for connector ABI " +
                                             abiText(api->abi_major, api->abi_minor) + "; this host speaks " +
                                             abiText(MCPH_ABI_MAJOR, MCPH_ABI_MINOR) +
                                             ": rebuild it against this host's SDK"});
  }
  if (api->create == nullptr || api->describe == nullptr || api->handle == nullptr) {
    return unexpected(LoadFailure{"abi", path + ": the connector table lacks create, describe or handle"});
  }
  const std::string name = api->name != nullptr ? api->name : "";
  if (name != expectedName) {
    return unexpected(LoadFailure{"abi", path + " calls itself '" + name + "' but its manifest says '" +
                                             expectedName + "'; reinstall the connector"});
  }
  plugin.api = api;
  return plugin;
}

}  // namespace mcphost::worker
