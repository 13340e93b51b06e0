// Directory (LDAP) and client-certificate (mTLS) authentication through the real host: a real
// slapd on loopback, and a CA with client certificates made by OpenSSL at test time.
#include <catch2/catch.hpp>

#include "auth_test_support.hpp"
#include "common/base64.hpp"
#include "support/slapd_server.hpp"

using namespace mcphost::test;

namespace {

const char* kLdif = R"(dn: dc=example,dc=com
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
displayName: Alice Example
mail: alice@example.com
userPassword: alice-secret

dn: cn=hr,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: hr
member: uid=alice,ou=people,dc=example,dc=com
)";

const char* kAllowHr =
    "version: 1\nrules:\n  - id: hr\n    effect: allow\n    subjects: {groups: [hr]}\n"
    "    actions: ['*']\n  - id: services\n    effect: allow\n    subjects: {auth_methods: [mtls]}\n"
    "    actions: ['*']\n    targets: {names: [test_simple_text]}\n";

std::string basic(const std::string& user, const std::string& password) {
  return "Basic " + mcphost::base64Encode(user + ":" + password);
}

}  // namespace

TEST_CASE("ldap: Basic credentials are checked against the directory, groups drive the policy", "[ldap]") {
  const std::string dir = makeTempDir();
  SlapdServer slapd(makeTempDir(), kLdif);
  writeFile(dir + "/policy.yaml", kAllowHr);
  ::setenv("MCPHOST_TEST_LDAP_PASSWORD", SlapdServer::rootPassword().c_str(), 1);
  const std::string ldapYaml = "auth:\n  ldap:\n    url: " + slapd.url() +
                               "\n    bind_dn: " + SlapdServer::rootDn() +
                               "\n    bind_password: {env: MCPHOST_TEST_LDAP_PASSWORD}\n"
                               "    user_base: ou=people,dc=example,dc=com\n"
                               "    group_base: ou=groups,dc=example,dc=com\n    timeout: 2s\n"
                               "  failed_attempts: {per_user: 3/min}\npolicy: " +
                               dir + "/policy.yaml\n";
  HostProcess host("", ldapYaml, false, faultyConnectorYaml("fx"));

  AuthSession alice(host, basic("alice", "alice-secret"));
  REQUIRE(alice.opened.status == 200);
  auto answer = alice.result("tools/call", {{"name", "fx__caller"}, {"arguments", Json::object()}});
  const auto caller = Json::parse(answer["result"]["content"][0]["text"].get<std::string>());
  CHECK(caller["subject"] == "alice");
  CHECK(caller["authMethod"] == "ldap");
  CHECK(caller["groups"] == Json::array({"hr"}));
  CHECK(caller["displayName"] == "Alice Example");

  auto wrong =
      host.post(rpc(1, "initialize", initializeParams()), {{"Authorization", basic("alice", "nope")}});
  CHECK(wrong.status == 401);
  CHECK(wrong.header("www-authenticate").find("Basic realm=") != std::string::npos);
  auto unknown =
      host.post(rpc(1, "initialize", initializeParams()), {{"Authorization", basic("nobody", "x")}});
  CHECK(unknown.status == 401);
  CHECK(unknown.lastMessage()["error"]["message"] ==
        wrong.lastMessage()["error"]["message"]);  // no enumeration
  auto injection =
      host.post(rpc(1, "initialize", initializeParams()), {{"Authorization", basic("*)(uid=*", "x")}});
  CHECK(injection.status == 401);
  CHECK(host.log().find("nope") == std::string::npos);  // passwords never reach the log

  // Per-user failure limit: the third wrong password for alice locks her name for a while.
  host.post(rpc(1, "initialize", initializeParams()), {{"Authorization", basic("alice", "nope2")}});
  host.post(rpc(1, "initialize", initializeParams()), {{"Authorization", basic("alice", "nope3")}});
  auto limited = host.post(rpc(1, "initialize", initializeParams()),
                           {{"Authorization", basic("alice", "alice-secret")}});
  CHECK(limited.status == 429);
  CHECK_FALSE(limited.header("retry-after").empty());

  // The directory goes away: fail closed with 503, not 401.
  slapd.stop();
  auto down =
      host.post(rpc(1, "initialize", initializeParams()), {{"Authorization", basic("bob", "whatever")}});
  CHECK(down.status == 503);
  CHECK(down.lastMessage()["error"]["message"].get<std::string>().find("directory unavailable") !=
        std::string::npos);
  CHECK(host.running());
  std::system(("rm -rf " + dir).c_str());
}

namespace {

struct Pki {
  std::string dir = makeTempDir();
  explicit Pki() {
    const std::string d = dir;
    const std::string cnf = d + "/ca.cnf";
    writeFile(cnf, "[ca]\ndefault_ca=CA_default\n[CA_default]\ndir=" + d + "\ndatabase=" + d +
                       "/index.txt\nnew_certs_dir=" + d + "\nserial=" + d +
                       "/serial\ndefault_md=sha256\npolicy=any\ncopy_extensions=copy\nunique_subject=no\n"
                       "[any]\ncommonName=supplied\n[client]\nextendedKeyUsage=clientAuth\n");
    writeFile(d + "/index.txt", "");
    writeFile(d + "/serial", "1000\n");
    const std::string q = " 2>>" + d + "/openssl.log";
    auto key = [&](const std::string& name) {
      return "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out " + d + "/" + name +
             ".key" + q;
    };
    auto csr = [&](const std::string& name, const std::string& subject, const std::string& san) {
      return "openssl req -new -key " + d + "/" + name + ".key -subj " + subject +
             " -addext subjectAltName=" + san + " -out " + d + "/" + name + ".csr" + q;
    };
    auto sign = [&](const std::string& name, const std::string& ca, const std::string& eku,
                    const std::string& san) {
      writeFile(d + "/" + name + ".ext", "extendedKeyUsage=" + eku + "\nsubjectAltName=" + san + "\n");
      return "openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/" + ca + ".pem -CAkey " + d +
             "/" + ca + ".key -CAcreateserial -days 2 -extfile " + d + "/" + name + ".ext -out " + d + "/" +
             name + ".pem" + q;
    };
    const std::vector<std::string> steps = {
        key("ca"),
        "openssl req -x509 -new -key " + d + "/ca.key -subj /CN=Test-CA -days 2 -out " + d + "/ca.pem" + q,
        key("rogue"),
        "openssl req -x509 -new -key " + d + "/rogue.key -subj /CN=Rogue-CA -days 2 -out " + d +
            "/rogue.pem" + q,
        key("server"),
        csr("server", "/CN=localhost", "IP:127.0.0.1"),
        sign("server", "ca", "serverAuth", "IP:127.0.0.1"),
        key("client"),
        csr("client", "/CN=etl", "URI:spiffe://corp/svc/etl"),
        sign("client", "ca", "clientAuth", "URI:spiffe://corp/svc/etl"),
        key("wrongpurpose"),
        csr("wrongpurpose", "/CN=web", "DNS:web.example"),
        sign("wrongpurpose", "ca", "serverAuth", "URI:spiffe://corp/svc/web"),
        key("untrusted"),
        csr("untrusted", "/CN=etl", "URI:spiffe://corp/svc/etl"),
        sign("untrusted", "rogue", "clientAuth", "URI:spiffe://corp/svc/etl"),
        key("unmapped"),
        csr("unmapped", "/CN=intruder", "URI:spiffe://other/x"),
        sign("unmapped", "ca", "clientAuth", "URI:spiffe://other/x"),
        key("expired"),
        csr("expired", "/CN=old", "URI:spiffe://corp/svc/old"),
        "openssl ca -batch -config " + cnf + " -cert " + d + "/ca.pem -keyfile " + d + "/ca.key -in " + d +
            "/expired.csr -out " + d +
            "/expired.pem -startdate 20200101000000Z -enddate 20200102000000Z -extensions client" + q,
    };
    for (const auto& step : steps) REQUIRE(std::system(step.c_str()) == 0);
  }
  ~Pki() { std::system(("rm -rf " + dir).c_str()); }
};

// curl with a client certificate; returns "STATUS BODY" ("" when the TLS handshake failed).
std::string curlWithCert(const Pki& pki, std::uint16_t port, const std::string& name) {
  std::vector<std::string> argv = {"/usr/bin/curl",
                                   "-s",
                                   "--max-time",
                                   "10",
                                   "--cacert",
                                   pki.dir + "/ca.pem",
                                   "-w",
                                   " %{http_code}",
                                   "-H",
                                   "Content-Type: application/json",
                                   "-H",
                                   "Accept: application/json, text/event-stream",
                                   "-d",
                                   rpc(1, "initialize", initializeParams()).dump()};
  if (!name.empty()) {
    argv.insert(argv.end(),
                {"--cert", pki.dir + "/" + name + ".pem", "--key", pki.dir + "/" + name + ".key"});
  }
  argv.push_back("https://127.0.0.1:" + std::to_string(port) + "/mcp");
  Subprocess p(argv, pki.dir + "/curl.err", true);
  std::string out;
  while (auto line = p.readLine(std::chrono::seconds(15))) out += *line;
  return p.wait() == 0 ? out : std::string();
}

}  // namespace

TEST_CASE("mtls: a trusted client certificate maps to a principal, bad ones are refused", "[mtls]") {
  Pki pki;
  writeFile(pki.dir + "/policy.yaml", kAllowHr);
  const std::string server = "  tls:\n    certificate_file: " + pki.dir +
                             "/server.pem\n    private_key_file: " + pki.dir +
                             "/server.key\n    client_ca_file: " + pki.dir + "/ca.pem\n";
  const std::string extra =
      "auth:\n  mtls:\n    rules:\n      - match: {san_uri: \"spiffe://corp/svc/*\"}\n"
      "        subject: \"{san_uri}\"\n        groups: [services]\npolicy: " +
      pki.dir + "/policy.yaml\n";
  HostProcess host(server, extra, /*tls=*/true);
  const std::string ok = curlWithCert(pki, host.port(), "client");
  CHECK(ok.size() > 4);
  CHECK(ok.substr(ok.size() - 3) == "200");
  CHECK(ok.find("\"protocolVersion\"") != std::string::npos);

  const std::string none = curlWithCert(pki, host.port(), "");
  CHECK(none.substr(none.size() - 3) == "401");  // optional client certificate: no certificate, no principal
  const std::string unmapped = curlWithCert(pki, host.port(), "unmapped");
  CHECK(unmapped.substr(unmapped.size() - 3) == "401");
  CHECK(unmapped.find("not mapped") != std::string::npos);
  CHECK(curlWithCert(pki, host.port(), "untrusted").empty());     // unknown CA: handshake refused
  CHECK(curlWithCert(pki, host.port(), "expired").empty());       // expired: handshake refused
  CHECK(curlWithCert(pki, host.port(), "wrongpurpose").empty());  // serverAuth only: refused
  CHECK(host.log().find("certificate has expired") != std::string::npos);
  CHECK(host.running());
}
