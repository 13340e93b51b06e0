// Turns the configuration's connector entries into running connector instances. Everything
// that can be checked without vendor code is checked first, with an error an operator can act
// on: the manifest, the library's permissions and SHA-256, the ABI range, the instance's config
// against the manifest's schema, and the declared secrets.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "connectors/catalog.hpp"
#include "connectors/remote/remote_connector.hpp"
#include "connectors/worker/worker_connector.hpp"

namespace mcphost::app {

struct ConnectorSet {
  std::vector<connectors::ConnectorInstance> instances;
  // Instances that could not be set up ("FILE:LINE: connector 'id': why"). serve keeps going
  // without them (they report unavailable); check-config fails.
  std::vector<std::string> problems;
  std::map<std::string, std::string> invalid;  // instance id -> why it could not be set up
  std::vector<std::pair<std::string, std::shared_ptr<connectors::WorkerConnector>>> workers;
  std::vector<std::pair<std::string, std::shared_ptr<connectors::RemoteConnector>>> remotes;
};

// The default folder of installed connectors: <prefix>/lib/mcphost/connectors beside the binary.
std::string defaultConnectorPath();
// The mcphost-worker binary beside the running executable.
std::string workerBinaryPath();

ConnectorSet makeConnectors(const config::Config& cfg);

}  // namespace mcphost::app
