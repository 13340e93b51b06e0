#include "connectors/manifest.hpp"

#include <Poco/SHA2Engine.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>

#include "common/json_schema.hpp"

namespace mcphost::connectors {

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::size_t kMaxManifestBytes = std::size_t{1} << 20;
constexpr int kMaxManifestDepth = 96;  // the config schema's own limit is checked by JsonSchema

bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool isAlnum(char c) {
  return isLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

bool validName(const std::string& s) {  // [a-z0-9][a-z0-9_-]{0,63}
  return !s.empty() && s.size() <= 64 && isLowerAlnum(s[0]) &&
         std::all_of(s.begin(), s.end(), [](char c) { return isLowerAlnum(c) || c == '_' || c == '-'; });
}

bool validSecretName(const std::string& s) {  // [A-Za-z_][A-Za-z0-9_.-]{0,63}
  return !s.empty() && s.size() <= 64 && (isAlnum(s[0]) || s[0] == '_') && !isDigit(s[0]) &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return isAlnum(c) || c == '_' || c == '.' || c == '-'; });
}

// MAJOR.MINOR.PATCH without leading zeros, then optional -prerelease and +build ([0-9A-Za-z.-]).
bool validSemver(const std::string& s) {
  if (s.size() > 64) return false;
  std::size_t pos = 0;
  for (int part = 0; part < 3; ++part) {
    const std::size_t start = pos;
    while (pos < s.size() && isDigit(s[pos])) ++pos;
    if (pos == start || (pos - start > 1 && s[start] == '0')) return false;
    if (part < 2 && (pos >= s.size() || s[pos++] != '.')) return false;
  }
  auto tag = [&](char lead) {  // "-rc.1" or "+b5": a non-empty run of [0-9A-Za-z.-]
    if (pos >= s.size() || s[pos] != lead) return true;
    const std::size_t start = ++pos;
    while (pos < s.size() && (isAlnum(s[pos]) || s[pos] == '.' || s[pos] == '-')) ++pos;
    return pos > start;
  };
  return tag('-') && tag('+') && pos == s.size();
}

bool validHostName(const std::string& host) {  // "*", "*.example.com", "db.internal" or IPv4
  if (host == "*") return true;
  const std::string name = host.rfind("*.", 0) == 0 ? host.substr(2) : host;
  if (name.empty() || name.size() > 253) return false;
  for (std::size_t start = 0; start <= name.size();) {
    const std::size_t dot = std::min(name.find('.', start), name.size());
    const std::string label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [](char c) { return isLowerAlnum(c) || c == '-'; })) {
      return false;
    }
    start = dot + 1;
  }
  const std::string last = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
  in_addr v4{};  // a name whose last label is numeric must be an IPv4 address
  return !std::all_of(last.begin(), last.end(), isDigit) || ::inet_pton(AF_INET, name.c_str(), &v4) == 1;
}

// host[:port]: a host name (or "*." + name, or "*"), an IPv4 address or [IPv6]; the port is 1-65535
// or "*", and no port means any. Returns the lowercase form; sets `problem` otherwise.
std::string normalizeEgress(std::string s, std::string& problem) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool v6 = !s.empty() && s[0] == '[';
  const std::size_t hostEnd = v6 ? s.find(']') + 1 : std::min(s.find(':'), s.size());
  const std::string host = s.substr(0, hostEnd);
  const bool hasPort = hostEnd < s.size();
  const std::string port = hasPort ? s.substr(hostEnd + 1) : std::string();
  in6_addr addr{};
  if (v6 && (hostEnd == 0 || ::inet_pton(AF_INET6, s.substr(1, hostEnd - 2).c_str(), &addr) != 1)) {
    problem = "'" + s + "' is not [IPv6] or [IPv6]:port";
  } else if (hasPort && (s[hostEnd] != ':' || port.empty() || port.find(':') != std::string::npos)) {
    problem = "'" + s + "' is not host:port (write an IPv6 address as [address]:port)";
  } else if (hasPort && port != "*" &&
             (port.size() > 5 || !std::all_of(port.begin(), port.end(), isDigit) || std::stoul(port) == 0 ||
              std::stoul(port) > 65535)) {
    problem = "'" + port + "' is not a port (1-65535 or *)";
  } else if (!v6 && !validHostName(host)) {
    problem = "'" + host + "' is not a host name, *.domain, IPv4 address or [IPv6] address";
  }
  return problem.empty() ? s : std::string();
}

// An absolute path without "..", lexically normalized; "/" itself is refused.
std::string normalizeAllowedPath(const std::string& s, std::string& problem) {
  const fs::path p(s);
  if (s.empty() || s.find('\0') != std::string::npos || !p.is_absolute()) {
    problem = "'" + s + "' is not an absolute path";
    return {};
  }
  if (std::any_of(p.begin(), p.end(), [](const fs::path& part) { return part == ".."; })) {
    problem = "'" + s + "' must not contain '..'";
    return {};
  }
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out == "/") problem = "'/' would open the whole file system; list the directories the connector needs";
  return problem.empty() ? out : std::string();
}

// The first error wins; every message is "PATH: key: problem".
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}
  [[nodiscard]] bool failed() const { return !error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }

  void fail(const std::string& key, const std::string& problem) {
    if (!failed()) error_ = source_ + ": " + (key.empty() ? "" : key + ": ") + problem;
  }

  // An object holding only `known` keys; `key` is its dotted path ("" for the document).
  bool object(const Json& v, const std::string& key, std::initializer_list<const char*> known) {
    if (failed()) return false;
    if (!v.is_object()) {
      fail(key, "expected an object");
      return false;
    }
    for (const auto& item : v.items()) {
      const std::string& name = item.key();
      if (std::none_of(known.begin(), known.end(), [&](const char* k) { return name == k; })) {
        std::string problem = "unknown key '" + name + "' (known: ";
        for (const char* k : known) problem.append(k).append(", ");
        problem.replace(problem.size() - 2, 2, ")");
        fail(key, problem);
        return false;
      }
    }
    return true;
  }

  const Json* find(const Json& obj, const std::string& path, const char* key, bool required) {
    const auto it = obj.find(key);
    if (it != obj.end()) return &*it;
    if (required) fail(join(path, key), "is required");
    return nullptr;
  }

  void text(const Json& obj, const std::string& path, const char* key, std::string& out,
            bool required = false) {
    const Json* v = find(obj, path, key, required);
    if (v == nullptr) return;
    if (!v->is_string()) return fail(join(path, key), "expected a string");
    out = v->get<std::string>();
  }

  void number(const Json& obj, const std::string& path, const char* key, std::uint64_t& out,
              std::uint64_t max, bool required = false) {
    const Json* v = find(obj, path, key, required);
    if (v == nullptr) return;
    if (!(v->is_number_unsigned() || (v->is_number_integer() && v->get<std::int64_t>() >= 0)) ||
        v->get<std::uint64_t>() > max) {
      return fail(join(path, key), "expected an integer from 0 to " + std::to_string(max));
    }
    out = v->get<std::uint64_t>();
  }

  void flag(const Json& obj, const std::string& path, const char* key, bool& out) {
    const Json* v = find(obj, path, key, false);
    if (v == nullptr) return;
    if (!v->is_boolean()) return fail(join(path, key), "expected true or false");
    out = v->get<bool>();
  }

  // A list of strings, each passed through `normalize` (which sets a problem or returns the value).
  template <typename Normalize>
  void strings(const Json& obj, const std::string& path, const char* key, std::vector<std::string>& out,
               Normalize normalize) {
    const Json* v = find(obj, path, key, false);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(join(path, key), "expected a list of strings");
    for (std::size_t i = 0; i < v->size() && !failed(); ++i) {
      const std::string where = join(path, key) + "[" + std::to_string(i) + "]";
      if (!(*v)[i].is_string()) return fail(where, "expected a string");
      std::string problem;
      std::string value = normalize((*v)[i].get<std::string>(), problem);
      if (!problem.empty()) return fail(where, problem);
      out.push_back(std::move(value));
    }
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  std::string source_;
  std::string error_;
};

void readLibrary(Reader& r, const Json& root, const fs::path& dir, ConnectorManifest& m) {
  std::string value;
  r.text(root, "", "library", value, true);
  if (r.failed()) return;
  const fs::path lib(value);
  if (value.empty() || value.find('\0') != std::string::npos || value.find('\\') != std::string::npos ||
      lib.is_absolute()) {
    return r.fail("library", "'" + value + "' must be a file name or a relative path beside connector.json");
  }
  if (std::any_of(lib.begin(), lib.end(),
                  [](const fs::path& part) { return part == ".." || part.empty(); })) {
    return r.fail("library", "'" + value + "' must stay inside the manifest's directory (no '..')");
  }
  m.library = (dir / lib).lexically_normal().string();
}

void readSecrets(Reader& r, const Json& root, ConnectorManifest& m) {
  const Json* list = r.find(root, "", "secrets", false);
  if (list == nullptr) return;
  if (!list->is_array()) return r.fail("secrets", "expected a list of {name, description, required}");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < list->size() && !r.failed(); ++i) {
    const std::string where = "secrets[" + std::to_string(i) + "]";
    SecretDecl s;
    if (!r.object((*list)[i], where, {"name", "description", "required"})) return;
    r.text((*list)[i], where, "name", s.name, true);
    r.text((*list)[i], where, "description", s.description);
    r.flag((*list)[i], where, "required", s.required);
    if (r.failed()) return;
    if (!validSecretName(s.name))
      return r.fail(where + ".name", "'" + s.name + "' must match [A-Za-z_][A-Za-z0-9_.-]{0,63}");
    if (!seen.insert(s.name).second) return r.fail(where + ".name", "duplicate secret '" + s.name + "'");
    m.secrets.push_back(std::move(s));
  }
}

void readConfigSchema(Reader& r, const Json& root, ConnectorManifest& m) {
  const Json* schema = r.find(root, "", "configSchema", false);
  if (schema == nullptr) return;
  if (!schema->is_object()) return r.fail("configSchema", "expected a JSON Schema object");
  // The config of an instance is a mapping, so a schema for anything else can never match.
  if (const auto type = schema->find("type");
      type != schema->end() && *type != "object" &&
      !(type->is_array() && std::count(type->begin(), type->end(), "object"))) {
    return r.fail("configSchema", "must describe an object (\"type\": \"object\")");
  }
  auto compiled = JsonSchema::compile(*schema);
  if (!compiled) return r.fail("configSchema", compiled.error());
  m.configSchema = *schema;
}

void readSandbox(Reader& r, const Json& root, ConnectorManifest& m) {
  const Json* box = r.find(root, "", "sandbox", false);
  std::string network;
  if (box != nullptr && r.object(*box, "sandbox", {"network", "egress", "readPaths", "writePaths"})) {
    r.text(*box, "sandbox", "network", network);
    r.strings(*box, "sandbox", "egress", m.egress, normalizeEgress);
    r.strings(*box, "sandbox", "readPaths", m.readPaths, normalizeAllowedPath);
    r.strings(*box, "sandbox", "writePaths", m.writePaths, normalizeAllowedPath);
  }
  if (r.failed()) return;
  if (!network.empty() && network != "none" && network != "egress") {
    return r.fail("sandbox.network", "'" + network + "' must be \"none\" or \"egress\"");
  }
  if (network == "none" && !m.egress.empty()) {
    return r.fail("sandbox.network", "is \"none\" but sandbox.egress lists destinations; remove one of them");
  }
  if (network == "egress" && m.egress.empty()) {
    return r.fail("sandbox.egress",
                  "is empty, so network \"egress\" would reach nothing; list host:port entries");
  }
  m.network = m.egress.empty() ? "none" : "egress";
}

void readResources(Reader& r, const Json& root, ConnectorManifest& m) {
  const Json* res = r.find(root, "", "resources", false);
  if (res == nullptr ||
      !r.object(*res, "resources", {"memory", "addressSpace", "cpuSeconds", "openFiles", "processes"})) {
    return;
  }
  for (auto [key, out] :
       {std::pair{"memory", &m.limits.memoryBytes}, {"addressSpace", &m.limits.addressSpaceBytes}}) {
    const Json* v = r.find(*res, "resources", key, false);
    if (v == nullptr || r.failed()) continue;
    auto bytes = v->is_string() ? parseSize(v->get<std::string>())
                 : v->is_number_unsigned()
                     ? Expected<std::uint64_t, std::string>(v->get<std::uint64_t>())
                     : unexpected(std::string("expected bytes or a size such as \"256MiB\""));
    if (!bytes) return r.fail(Reader::join("resources", key), bytes.error());
    *out = *bytes;
  }
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint32_t>::max();
  r.number(*res, "resources", "cpuSeconds", m.limits.cpuSeconds, kMax);
  r.number(*res, "resources", "openFiles", m.limits.maxOpenFiles, kMax);
  r.number(*res, "resources", "processes", m.limits.maxProcesses, kMax);
}

// Why a file or directory could be replaced by someone the host should not trust, or "".
std::string unsafePermissions(const std::string& path, const struct stat& st, bool directory) {
  const bool hostIsRoot = ::geteuid() == 0;
  if ((st.st_mode & S_IWOTH) != 0 && !(directory && (st.st_mode & S_ISVTX) != 0)) {
    return path + " is writable by every user; fix with: chmod o-w " + path;
  }
  if (hostIsRoot && st.st_uid != 0) {
    return path + " is owned by uid " + std::to_string(st.st_uid) +
           " but the host runs as root, so that user could run code as root; fix with: chown root:root " +
           path;
  }
  if (hostIsRoot && st.st_gid != 0 && (st.st_mode & S_IWGRP) != 0) {
    return path + " is writable by group " + std::to_string(st.st_gid) +
           " but the host runs as root; fix with: chmod g-w " + path;
  }
  return {};
}

class Fd {  // closes on scope exit
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Expected<std::uint64_t, std::string> parseSize(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && isDigit(text[digits])) ++digits;
  const std::string unit = text.substr(digits);
  static const std::pair<const char*, unsigned> kUnits[] = {{"", 0},     {"B", 0},    {"KiB", 10},
                                                            {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
  const auto* u =
      std::find_if(std::begin(kUnits), std::end(kUnits), [&](const auto& k) { return unit == k.first; });
  if (digits == 0 || digits > 15 || u == std::end(kUnits)) {
    return unexpected("'" + text + "' is not a size (use bytes or e.g. 512KiB, 256MiB, 1GiB)");
  }
  const std::uint64_t n = std::stoull(text.substr(0, digits));
  if (n > (std::numeric_limits<std::uint64_t>::max() >> u->second))
    return unexpected("'" + text + "' is too large");
  return n << u->second;
}

Expected<ConnectorManifest, std::string> parseManifest(const std::string& text, const std::string& path) {
  std::error_code ec;
  fs::path file = fs::absolute(path, ec).lexically_normal();
  if (ec) file = fs::path(path);
  const std::string source = file.string();
  Json root;
  int deepest = 0;
  try {
    root = Json::parse(text, [&](int depth, Json::parse_event_t, Json&) {
      deepest = std::max(deepest, depth);
      return true;
    });
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    const std::size_t at = what.find("line ");
    const std::size_t colon = what.find(": ", at == std::string::npos ? 0 : at);
    const std::string line =
        at == std::string::npos ? std::string() : what.substr(at + 5, what.find(',', at) - at - 5);
    return unexpected(source + (line.empty() ? "" : ":" + line) +
                      ": invalid JSON: " + (colon == std::string::npos ? what : what.substr(colon + 2)));
  }
  if (deepest > kMaxManifestDepth) {
    return unexpected(source + ": the manifest is nested deeper than " + std::to_string(kMaxManifestDepth) +
                      " levels");
  }
  ConnectorManifest m;
  m.path = source;
  Reader r(source);
  if (!root.is_object())
    return unexpected(source + ": expected a JSON object (see the connector author guide)");
  r.object(root, "",
           {"manifestVersion", "name", "version", "description", "library", "sha256", "abi", "secrets",
            "configSchema", "sandbox", "resources", "concurrent"});
  std::uint64_t manifestVersion = 0;
  r.number(root, "", "manifestVersion", manifestVersion, 1000, true);
  if (!r.failed() && manifestVersion != kManifestVersion) {
    r.fail("manifestVersion", std::to_string(manifestVersion) +
                                  " is not supported (this host reads version " +
                                  std::to_string(kManifestVersion) + ")");
  }
  r.text(root, "", "name", m.name, true);
  if (!r.failed() && !validName(m.name))
    r.fail("name", "'" + m.name + "' must match [a-z0-9][a-z0-9_-]{0,63}");
  r.text(root, "", "version", m.version, true);
  if (!r.failed() && !validSemver(m.version)) {
    r.fail("version", "'" + m.version + "' is not a semantic version (e.g. 1.2.0 or 2.0.0-rc.1)");
  }
  r.text(root, "", "description", m.description);
  readLibrary(r, root, file.parent_path(), m);
  r.text(root, "", "sha256", m.sha256, true);
  if (!r.failed() && (m.sha256.size() != 64 || !std::all_of(m.sha256.begin(), m.sha256.end(), [](char c) {
                        return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                      }))) {
    r.fail("sha256", "expected 64 hex digits (sha256sum of the library)");
  }
  std::transform(m.sha256.begin(), m.sha256.end(), m.sha256.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (const Json* abi = r.find(root, "", "abi", true);
      abi != nullptr && r.object(*abi, "abi", {"major", "minMinor"})) {
    std::uint64_t major = 0, minMinor = 0;
    r.number(*abi, "abi", "major", major, std::numeric_limits<std::uint32_t>::max(), true);
    r.number(*abi, "abi", "minMinor", minMinor, std::numeric_limits<std::uint32_t>::max());
    m.abiMajor = static_cast<std::uint32_t>(major);
    m.abiMinMinor = static_cast<std::uint32_t>(minMinor);
  }
  if (!r.failed()) readSecrets(r, root, m);
  if (!r.failed()) readConfigSchema(r, root, m);
  if (!r.failed()) readSandbox(r, root, m);
  if (!r.failed()) readResources(r, root, m);
  r.flag(root, "", "concurrent", m.concurrent);
  if (r.failed()) return unexpected(r.error());
  return m;
}

Expected<ConnectorManifest, std::string> loadManifest(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return unexpected(path + ": no such connector manifest (not a regular file)");
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected(path + ": cannot open the connector manifest: " + std::strerror(errno));
  std::string text(kMaxManifestBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxManifestBytes) return unexpected(path + ": the manifest is larger than 1 MiB");
  return parseManifest(text, path);
}

Expected<bool, std::string> verifyLibrary(const ConnectorManifest& m) {
  // Permissions and digest are both taken from one open descriptor, so they describe one file.
  const Fd fd(::open(m.library.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
    return unexpected("library " + m.library + " (from " + m.path +
                      "): cannot open: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return unexpected("library " + m.library + " is not a regular file");
  std::error_code ec;
  const fs::path real = fs::canonical(m.library, ec);
  std::vector<std::pair<std::string, bool>> checks{{m.library, false}, {m.path, false}};
  checks.emplace_back((ec ? fs::path(m.library) : real).parent_path().string(), true);
  checks.emplace_back(fs::path(m.path).parent_path().string(), true);
  for (const auto& [file, directory] : checks) {
    struct stat other {};
    if (file != m.library && ::stat(file.c_str(), &other) != 0) continue;  // the library's own is `st`
    if (auto problem = unsafePermissions(file, file == m.library ? st : other, directory); !problem.empty()) {
      return unexpected("connector " + m.name + ": refusing to load: " + problem);
    }
  }
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  std::vector<char> buffer(std::size_t{1} << 16);
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unexpected("library " + m.library + ": read failed: " + std::strerror(errno));
    sha.update(buffer.data(), static_cast<std::size_t>(n));
  }
  const std::string actual = Poco::DigestEngine::digestToHex(sha.digest());
  if (actual != m.sha256) {
    return unexpected("library " + m.library + ": SHA-256 is " + actual + " but " + m.path + " expects " +
                      m.sha256 +
                      ": the library does not match its manifest; reinstall the connector or update sha256");
  }
  return true;
}

Expected<bool, std::string> checkAbi(const ConnectorManifest& m, std::uint32_t hostMajor,
                                     std::uint32_t hostMinor) {
  const std::string who = "connector " + m.name + " " + m.version + " (" + m.library + ")";
  const std::string host = std::to_string(hostMajor) + "." + std::to_string(hostMinor);
  const std::string needs = std::to_string(m.abiMajor) + "." + std::to_string(m.abiMinMinor);
  if (m.abiMajor != hostMajor) {
    return unexpected(who + " is built for plugin ABI " + needs + " but this host speaks ABI " + host +
                      " and major versions must match; install a build of the connector for ABI " +
                      std::to_string(hostMajor));
  }
  if (m.abiMinMinor > hostMinor) {
    return unexpected(who + " needs plugin ABI " + needs + " or newer but this host speaks ABI " + host +
                      "; upgrade mcphost or install an older build of the connector");
  }
  return true;
}

Expected<bool, std::string> validateConnectorConfig(const ConnectorManifest& m, const nlohmann::json& config,
                                                    std::string_view instanceId) {
  const std::string prefix = "connector '" + std::string(instanceId.empty() ? m.name : instanceId) + "': ";
  const std::string suffix = " (schema of " + m.name + " " + m.version + ")";
  auto schema = JsonSchema::compile(m.configSchema);
  if (!schema)
    return unexpected(prefix + "the configSchema of " + m.name + " " + m.version +
                      " is invalid: " + schema.error());
  const auto violations = schema->validate(config);
  if (violations.empty()) return true;
  std::string out;
  for (const auto& v : violations) {
    if (!out.empty()) out += '\n';
    out.append(prefix).append("config").append(v.path.empty() ? "" : " ").append(v.path);
    out.append(": ").append(v.message).append(suffix);
  }
  return unexpected(out);
}

std::vector<std::string> missingRequiredSecrets(const ConnectorManifest& m,
                                                const std::function<bool(std::string_view)>& hasSecret) {
  std::vector<std::string> missing;
  for (const auto& s : m.secrets) {
    if (s.required && !hasSecret(s.name)) missing.push_back(s.name);
  }
  return missing;
}

}  // namespace mcphost::connectors
