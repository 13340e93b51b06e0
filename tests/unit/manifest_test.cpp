#include "connectors/manifest.hpp"

#include <Poco/SHA2Engine.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

using namespace mcphost::connectors;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kLibraryBytes =
    "\x7f"
    "ELF not really a library";

std::string sha256Hex(const std::string& data) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(data);
  return Poco::DigestEngine::digestToHex(engine.digest());
}

// A connector directory with a library and a manifest, removed afterwards.
struct ConnectorDir {
  fs::path dir = fs::temp_directory_path() / ("mcphost-manifest-" + std::to_string(::getpid()) + "-" +
                                              std::to_string(reinterpret_cast<std::uintptr_t>(this)));
  ConnectorDir() {
    fs::create_directories(dir);
    ::chmod(dir.c_str(), 0755);
    std::ofstream(dir / "libmcphost_postgres.so", std::ios::binary) << kLibraryBytes;
    ::chmod(library().c_str(), 0644);
  }
  ConnectorDir(const ConnectorDir&) = delete;
  ConnectorDir& operator=(const ConnectorDir&) = delete;
  ~ConnectorDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  [[nodiscard]] std::string library() const { return (dir / "libmcphost_postgres.so").string(); }
  [[nodiscard]] std::string manifest() const { return (dir / "connector.json").string(); }

  // Writes `doc` as connector.json and loads it.
  mcphost::Expected<ConnectorManifest, std::string> load(const json& doc) const {
    std::ofstream(manifest()) << doc.dump(2);
    return loadManifest(manifest());
  }
};

json validManifest() {
  return json::parse(R"({
    "manifestVersion": 1, "name": "postgres", "version": "1.2.0",
    "library": "libmcphost_postgres.so", "sha256": ")" +
                     sha256Hex(kLibraryBytes) + R"(",
    "abi": {"major": 1, "minMinor": 2},
    "secrets": [{"name": "password", "description": "database password", "required": true},
                {"name": "client_cert"}, {"name": "proxy", "required": false}],
    "configSchema": {"type": "object", "required": ["pool"], "additionalProperties": false,
      "properties": {"pool": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}}},
    "sandbox": {"egress": ["DB.internal:5432", "*.example.com:443", "[::1]:8080"],
                "readPaths": ["/etc/ssl/certs/"], "writePaths": ["/var/lib/mcphost/pg"]},
    "resources": {"memory": "256MiB", "addressSpace": "4GiB", "cpuSeconds": 30, "openFiles": 256, "processes": 0},
    "concurrent": true})");
}

json with(json doc, const char* pointer, json value) {
  doc[json::json_pointer(pointer)] = std::move(value);
  return doc;
}

// The load error for `doc`, or "" when it loads.
std::string loadError(const ConnectorDir& c, const json& doc) {
  auto m = c.load(doc);
  return m ? std::string() : m.error();
}

}  // namespace

TEST_CASE("a valid manifest loads with every field") {
  ConnectorDir c;
  auto m = c.load(validManifest());
  INFO((m ? std::string() : m.error()));
  REQUIRE(m);
  CHECK(m->path == c.manifest());
  CHECK(m->name == "postgres");
  CHECK(m->version == "1.2.0");
  CHECK(m->library == c.library());
  CHECK(m->sha256 == sha256Hex(kLibraryBytes));
  CHECK(m->abiMajor == 1);
  CHECK(m->abiMinMinor == 2);
  REQUIRE(m->secrets.size() == 3);
  CHECK(m->secrets[0].description == "database password");
  CHECK(m->secrets[1].required);  // required defaults to true
  CHECK_FALSE(m->secrets[2].required);
  CHECK(m->network == "egress");
  CHECK(m->egress == std::vector<std::string>{"db.internal:5432", "*.example.com:443", "[::1]:8080"});
  CHECK(m->readPaths == std::vector<std::string>{"/etc/ssl/certs"});
  CHECK(m->limits.memoryBytes == (std::uint64_t{256} << 20));
  CHECK(m->limits.addressSpaceBytes == (std::uint64_t{4} << 30));
  CHECK(m->limits.cpuSeconds == 30);
  CHECK(m->limits.maxOpenFiles == 256);
  CHECK(m->concurrent);
  CHECK(verifyLibrary(*m));
}

TEST_CASE("optional manifest fields have safe defaults") {
  ConnectorDir c;
  json doc = validManifest();
  for (const char* key : {"secrets", "configSchema", "sandbox", "resources", "concurrent"}) doc.erase(key);
  doc["sha256"] = sha256Hex(kLibraryBytes);
  auto m = c.load(doc);
  REQUIRE(m);
  CHECK(m->network == "none");
  CHECK(m->egress.empty());
  CHECK(m->configSchema == json{{"type", "object"}});
  CHECK(m->limits.memoryBytes == 0);
  CHECK_FALSE(m->concurrent);
}

TEST_CASE("each bad manifest field is an error naming the file and the key") {
  ConnectorDir c;
  const json good = validManifest();
  const std::string file = c.manifest() + ": ";
  auto starts = [&](const json& doc, const std::string& expected) {
    const std::string error = loadError(c, doc);
    INFO(error);
    CHECK(error.rfind(file + expected, 0) == 0);
  };
  starts(with(good, "/foo", 1), "unknown key 'foo' (known: manifestVersion, name, version,");
  starts(with(good, "/manifestVersion", 2), "manifestVersion: 2 is not supported");
  starts(with(good, "/name", "Postgres"), "name: 'Postgres' must match [a-z0-9][a-z0-9_-]{0,63}");
  starts(with(good, "/name", 7), "name: expected a string");
  starts(with(good, "/version", "1.2"), "version: '1.2' is not a semantic version");
  CHECK(loadError(c, with(good, "/version", "2.0.0-rc.1+build.5")).empty());
  starts(with(good, "/library", "/usr/lib/libx.so"), "library: '/usr/lib/libx.so' must be a file name");
  starts(with(good, "/library", "sub/../../libx.so"), "library: 'sub/../../libx.so' must stay inside");
  starts(with(good, "/sha256", "abc"), "sha256: expected 64 hex digits");
  starts(with(good, "/abi/major", "1"), "abi.major: expected an integer");
  starts(with(good, "/abi/minor", 1), "abi: unknown key 'minor' (known: major, minMinor)");
  json noAbi = good;
  noAbi.erase("abi");
  starts(noAbi, "abi: is required");
  starts(with(good, "/secrets/1/name", "password"), "secrets[1].name: duplicate secret 'password'");
  starts(with(good, "/secrets/0/required", "yes"), "secrets[0].required: expected true or false");
  starts(with(good, "/configSchema/properties/pool/pattern", "(["),
         "configSchema: /properties/pool/pattern: is not a valid regular expression");
  starts(with(good, "/configSchema", {{"type", "string"}}), "configSchema: must describe an object");
  starts(with(good, "/sandbox/network", "none"), "sandbox.network: is \"none\" but sandbox.egress lists");
  starts(with(good, "/sandbox/egress/0", "db:0"), "sandbox.egress[0]: '0' is not a port");
  starts(with(good, "/sandbox/egress/0", "bad_host"), "sandbox.egress[0]: 'bad_host' is not a host name");
  starts(with(good, "/sandbox/egress/0", "::1"), "sandbox.egress[0]: '::1' is not host:port");
  starts(with(good, "/sandbox/readPaths/0", "etc/ssl"),
         "sandbox.readPaths[0]: 'etc/ssl' is not an absolute path");
  starts(with(good, "/sandbox/writePaths/0", "/"),
         "sandbox.writePaths[0]: '/' would open the whole file system");
  starts(with(good, "/sandbox/writePaths/0", "/var/../etc"), "sandbox.writePaths[0]: '/var/../etc' must not");
  starts(with(good, "/resources/memory", "256MB"), "resources.memory: '256MB' is not a size");
  starts(with(good, "/resources/openFiles", -1), "resources.openFiles: expected an integer");
  starts(with(good, "/concurrent", "yes"), "concurrent: expected true or false");

  std::ofstream(c.manifest()) << "{\n  \"name\": \"x\",\n  oops\n}\n";
  auto syntax = loadManifest(c.manifest());
  REQUIRE_FALSE(syntax);
  CHECK(syntax.error().rfind(c.manifest() + ":3: invalid JSON: ", 0) == 0);
  CHECK_FALSE(loadManifest((c.dir / "missing.json").string()));
}

TEST_CASE("sizes accept bytes and binary units") {
  CHECK(*parseSize("512KiB") == std::uint64_t{512} * 1024);
  CHECK(*parseSize("1GiB") == (std::uint64_t{1} << 30));
  CHECK(*parseSize("4096") == 4096);
  CHECK_FALSE(parseSize("1.5GiB"));
  CHECK_FALSE(parseSize("10MB"));
  CHECK_FALSE(parseSize("99999999999999TiB"));
}

TEST_CASE("a library that does not match its manifest is refused") {
  ConnectorDir c;
  auto m = c.load(with(validManifest(), "/sha256", std::string(64, 'a')));
  REQUIRE(m);
  auto ok = verifyLibrary(*m);
  REQUIRE_FALSE(ok);
  CHECK(ok.error().find(c.library()) != std::string::npos);
  CHECK(ok.error().find(sha256Hex(kLibraryBytes)) != std::string::npos);
  CHECK(ok.error().find(std::string(64, 'a')) != std::string::npos);
  CHECK(
      ok.error().find("the library does not match its manifest; reinstall the connector or update sha256") !=
      std::string::npos);

  fs::remove(c.library());
  CHECK_FALSE(verifyLibrary(*m));
  fs::create_directory(c.library());
  auto dir = verifyLibrary(*m);
  REQUIRE_FALSE(dir);
  CHECK(dir.error().find("not a regular file") != std::string::npos);
}

TEST_CASE("a library others can replace is refused with the fix") {
  ConnectorDir c;
  auto m = c.load(validManifest());
  REQUIRE(m);
  ::chmod(c.library().c_str(), 0666);
  auto file = verifyLibrary(*m);
  REQUIRE_FALSE(file);
  CHECK(file.error().find("chmod o-w " + c.library()) != std::string::npos);
  ::chmod(c.library().c_str(), 0644);
  ::chmod(c.dir.c_str(), 0777);
  auto dir = verifyLibrary(*m);
  REQUIRE_FALSE(dir);
  CHECK(dir.error().find("chmod o-w " + c.dir.string()) != std::string::npos);
  ::chmod(c.dir.c_str(), 0755);
  if (::geteuid() == 0) {  // the host as root trusts only root-owned code
    REQUIRE(::chown(c.library().c_str(), 4242, 0) == 0);
    auto owner = verifyLibrary(*m);
    REQUIRE_FALSE(owner);
    CHECK(owner.error().find("chown root:root " + c.library()) != std::string::npos);
    REQUIRE(::chown(c.library().c_str(), 0, 0) == 0);
  }
  CHECK(verifyLibrary(*m));
}

TEST_CASE("the ABI major must match and the minor must be new enough") {
  ConnectorManifest m;
  m.name = "postgres";
  m.version = "1.2.0";
  m.abiMajor = 1;
  m.abiMinMinor = 2;
  CHECK(checkAbi(m, 1, 2));
  CHECK(checkAbi(m, 1, 7));
  auto old = checkAbi(m, 1, 1);
  REQUIRE_FALSE(old);
  CHECK(old.error().find("needs plugin ABI 1.2 or newer but this host speaks ABI 1.1") != std::string::npos);
  auto major = checkAbi(m, 2, 0);
  REQUIRE_FALSE(major);
  CHECK(major.error().find("built for plugin ABI 1.2 but this host speaks ABI 2.0") != std::string::npos);
}

TEST_CASE("instance config is validated against the manifest's schema with JSON paths") {
  ConnectorDir c;
  auto m = c.load(validManifest());
  REQUIRE(m);
  CHECK(validateConnectorConfig(*m, json::parse(R"({"pool": {"size": 4}})"), "hr"));
  auto small = validateConnectorConfig(*m, json::parse(R"({"pool": {"size": 0}})"), "hr");
  REQUIRE_FALSE(small);
  CHECK(small.error() == "connector 'hr': config /pool/size: must be >= 1 (schema of postgres 1.2.0)");
  auto several = validateConnectorConfig(*m, json::parse(R"({"pool": {"size": "4"}, "extra": 1})"), "hr");
  REQUIRE_FALSE(several);
  CHECK(several.error().find("connector 'hr': config /pool/size: must be integer (got string)") !=
        std::string::npos);
  CHECK(several.error().find("connector 'hr': config: unknown property 'extra'") != std::string::npos);
  auto missing = validateConnectorConfig(*m, json::object());
  REQUIRE_FALSE(missing);
  CHECK(missing.error() ==
        "connector 'postgres': config: missing required property 'pool' (schema of postgres 1.2.0)");
}

TEST_CASE("required secrets that are not configured are reported") {
  ConnectorDir c;
  auto m = c.load(validManifest());
  REQUIRE(m);
  CHECK(missingRequiredSecrets(*m, [](std::string_view n) { return n == "password"; }) ==
        std::vector<std::string>{"client_cert"});
  CHECK(missingRequiredSecrets(*m, [](std::string_view) { return true; }).empty());
}

TEST_CASE("a hostile config schema is refused before it can hurt the host") {
  ConnectorDir c;
  json deep = json::object();
  json* cur = &deep;
  for (int i = 0; i < 40; ++i) cur = &((*cur)["properties"]["x"] = json::object());
  auto nested = loadError(c, with(validManifest(), "/configSchema", deep));
  CHECK(nested.find("configSchema: the schema is nested deeper than 64 levels") != std::string::npos);
  auto loop = loadError(
      c, with(validManifest(), "/configSchema", {{"type", "object"}, {"allOf", {{{"$ref", "#"}}}}}));
  CHECK(loop.find("configSchema: /allOf/0: refers back to (root)") != std::string::npos);
  auto remote =
      loadError(c, with(validManifest(), "/configSchema/properties/pool", {{"$ref", "https://x/s.json"}}));
  CHECK(remote.find("only local references") != std::string::npos);
  std::string text(200000, '[');
  text += std::string(200000, ']');
  std::ofstream(c.manifest()) << "{\"configSchema\": " << text << "}";
  auto brackets = loadManifest(c.manifest());
  REQUIRE_FALSE(brackets);
  CHECK(brackets.error().find("nested deeper than") != std::string::npos);
}
