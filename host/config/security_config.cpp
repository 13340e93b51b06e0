#include "config/security_config.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <filesystem>

#include "guard/rate_limiter.hpp"

namespace mcphost::config::detail {

std::string besideConfig(const std::string& configPath, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::absolute(configPath).parent_path() / path).lexically_normal().string();
}

namespace {

void readRate(Reader& r, const YAML::Node& node, const std::string& path, std::string& out) {
  if (!node || r.failed()) return;
  if (!node.IsScalar()) {
    r.fail(node, path, "expected a rate such as 50/s, 600/min or 1000/h");
    return;
  }
  auto rate = guard::parseRate(node.Scalar());
  if (!rate) {
    r.fail(node, path, rate.error());
    return;
  }
  out = node.Scalar();
}

void readRateMap(Reader& r, const YAML::Node& map, const std::string& path, const char* key,
                 std::map<std::string, std::string>& out) {
  const YAML::Node node = map[key];
  if (!node || r.failed()) return;
  if (!node.IsMap()) {
    r.fail(node, path + "." + key, "expected a mapping of names (or \"*\") to rates such as 10/s");
    return;
  }
  for (const auto& kv : node) {
    std::string rate;
    const std::string name = kv.first.as<std::string>();
    std::string where = path;
    where.append(".").append(key).append(".").append(name);
    readRate(r, kv.second, where, rate);
    if (r.failed()) return;
    out[name] = rate;
  }
}

bool isLoopbackHost(const std::string& host) {
  in_addr address{};
  if (::inet_pton(AF_INET, host.c_str(), &address) != 1) return false;
  return (ntohl(address.s_addr) >> 24) == 127;
}

void readOAuth(Reader& r, const YAML::Node& list, Config& cfg) {
  if (!list.IsSequence() || list.size() == 0) {
    r.fail(list, "auth.oauth", "expected a list of authorization servers ({issuer: https://...})");
    return;
  }
  for (std::size_t i = 0; i < list.size() && !r.failed(); ++i) {
    const YAML::Node p = list[i];
    const std::string path = "auth.oauth[" + std::to_string(i) + "]";
    r.allowKeys(p, path,
                {"issuer", "audience", "jwks_uri", "algorithms", "hs256_secret", "clock_skew",
                 "required_scopes", "claims", "ca_file", "jwks_cache_ttl", "timeout", "token_exchange"});
    OAuthProviderConfig o;
    o.line = p.Mark().line + 1;
    r.read(p, path, "issuer", o.issuer);
    r.read(p, path, "audience", o.audience);
    r.read(p, path, "jwks_uri", o.jwksUri);
    if (p["algorithms"]) {
      o.algorithms.clear();
      r.readStrings(p, path, "algorithms", o.algorithms);
    }
    if (p["hs256_secret"]) readSecretSource(r, p["hs256_secret"], path + ".hs256_secret", o.hmacSecret);
    r.readDuration(p, path, "clock_skew", o.clockSkew);
    r.readStrings(p, path, "required_scopes", o.requiredScopes);
    if (const YAML::Node claims = p["claims"]; claims && !r.failed()) {
      r.allowKeys(claims, path + ".claims", {"subject", "name", "groups", "roles", "tenant"});
      r.readStringMap(p, path, "claims", o.claims);
    }
    r.read(p, path, "ca_file", o.caFile);
    o.caFile = besideConfig(cfg.path, o.caFile);
    r.readDuration(p, path, "jwks_cache_ttl", o.jwksTtl);
    r.readDuration(p, path, "timeout", o.timeout);
    if (const YAML::Node te = p["token_exchange"]; te && !r.failed()) {
      r.allowKeys(te, path + ".token_exchange", {"token_endpoint", "client_id", "client_secret"});
      r.read(te, path + ".token_exchange", "token_endpoint", o.tokenEndpoint);
      r.read(te, path + ".token_exchange", "client_id", o.clientId);
      if (te["client_secret"])
        readSecretSource(r, te["client_secret"], path + ".token_exchange.client_secret", o.clientSecret);
      if (!r.failed() && o.clientId.empty())
        r.fail(te, path + ".token_exchange.client_id",
               "required: the client id mcphost uses at the token endpoint");
    }
    if (r.failed()) return;
    if (o.issuer.rfind("https://", 0) != 0 && o.issuer.rfind("http://127.", 0) != 0 &&
        o.issuer.rfind("http://localhost", 0) != 0) {
      r.fail(p["issuer"] ? p["issuer"] : p, path + ".issuer",
             "required: the issuer URL, https:// (plain http only on loopback)");
      return;
    }
    for (const auto& alg : o.algorithms) {
      if (alg != "RS256" && alg != "ES256" && alg != "HS256") {
        r.fail(p["algorithms"], path + ".algorithms",
               "'" + alg + "' is not supported; use RS256, ES256 or HS256");
        return;
      }
    }
    const bool wantsHs = std::find(o.algorithms.begin(), o.algorithms.end(), "HS256") != o.algorithms.end();
    const bool hasSecret = !o.hmacSecret.env.empty() || !o.hmacSecret.file.empty();
    if (wantsHs != hasSecret) {
      r.fail(p, path, "HS256 needs hs256_secret, and hs256_secret needs HS256 in algorithms");
      return;
    }
    cfg.auth.oauth.push_back(std::move(o));
  }
}

void readLdap(Reader& r, const YAML::Node& node, Config& cfg) {
  const std::string path = "auth.ldap";
  r.allowKeys(node, path,
              {"url",
               "start_tls",
               "ca_file",
               "verify_certificate",
               "bind_dn",
               "bind_password",
               "user_base",
               "user_filter",
               "bind_dn_template",
               "group_mode",
               "group_base",
               "group_filter",
               "group_name_attribute",
               "nested_groups",
               "group_roles",
               "display_name_attribute",
               "tenant_attribute",
               "attributes",
               "pool_size",
               "timeout",
               "allow_plain_http"});
  LdapConfig& l = cfg.auth.ldap;
  l.enabled = true;
  r.read(node, path, "url", l.url);
  r.read(node, path, "start_tls", l.startTls);
  r.read(node, path, "ca_file", l.caFile);
  l.caFile = besideConfig(cfg.path, l.caFile);
  r.read(node, path, "verify_certificate", l.verifyCertificate);
  r.read(node, path, "bind_dn", l.bindDn);
  if (node["bind_password"])
    readSecretSource(r, node["bind_password"], path + ".bind_password", l.bindPassword);
  r.read(node, path, "user_base", l.userBase);
  r.read(node, path, "user_filter", l.userFilter);
  r.read(node, path, "bind_dn_template", l.bindDnTemplate);
  r.read(node, path, "group_mode", l.groupMode);
  r.read(node, path, "group_base", l.groupBase);
  r.read(node, path, "group_filter", l.groupFilter);
  r.read(node, path, "group_name_attribute", l.groupNameAttribute);
  r.read(node, path, "nested_groups", l.nestedGroups);
  if (const YAML::Node roles = node["group_roles"]; roles && !r.failed()) {
    if (!roles.IsMap()) {
      r.fail(roles, path + ".group_roles", "expected a mapping of group name to a list of roles");
    } else {
      for (const auto& kv : roles) {
        std::vector<std::string> list;
        r.readStrings(roles, path + ".group_roles", kv.first.Scalar().c_str(), list);
        l.groupRoles[kv.first.Scalar()] = list;
      }
    }
  }
  r.read(node, path, "display_name_attribute", l.displayNameAttribute);
  r.read(node, path, "tenant_attribute", l.tenantAttribute);
  if (node["attributes"]) {
    l.attributes.clear();
    r.readStrings(node, path, "attributes", l.attributes);
  }
  r.read(node, path, "pool_size", l.poolSize);
  r.readDuration(node, path, "timeout", l.timeout);
  r.read(node, path, "allow_plain_http", cfg.auth.basicOverPlainHttp);
  if (r.failed()) return;
  if (l.url.rfind("ldap://", 0) != 0 && l.url.rfind("ldaps://", 0) != 0) {
    r.fail(node["url"] ? node["url"] : node, path + ".url",
           "required: ldap://host:port or ldaps://host:port");
  } else if (l.bindDnTemplate.empty() && l.userBase.empty()) {
    r.fail(node, path, "set user_base (search-then-bind) or bind_dn_template");
  } else if (l.groupMode != "none" && l.groupMode != "member_of" && l.groupMode != "search") {
    r.fail(node["group_mode"], path + ".group_mode", "must be none, member_of or search");
  } else if (l.groupMode == "search" && l.groupBase.empty()) {
    r.fail(node, path + ".group_base", "required when group_mode is search");
  } else if (l.poolSize == 0 || l.poolSize > 64) {
    r.fail(node["pool_size"], path + ".pool_size", "must be between 1 and 64");
  } else if (l.userFilter.find("{username}") == std::string::npos) {
    r.fail(node["user_filter"], path + ".user_filter", "must contain {username}");
  } else if (!l.bindDnTemplate.empty() && l.bindDnTemplate.find("{username}") == std::string::npos) {
    r.fail(node["bind_dn_template"], path + ".bind_dn_template", "must contain {username}");
  } else if (l.groupMode == "search" && l.groupFilter.find("{dn}") == std::string::npos) {
    r.fail(node["group_filter"], path + ".group_filter", "must contain {dn} (the user's entry)");
  } else if (!l.bindDn.empty() && l.bindPassword.env.empty() && l.bindPassword.file.empty()) {
    r.fail(node, path + ".bind_password", "required with bind_dn: {env: VARIABLE} or {file: PATH}");
  } else if (!l.caFile.empty() && ::access(l.caFile.c_str(), R_OK) != 0) {
    r.fail(node["ca_file"], path + ".ca_file", "cannot read " + l.caFile);
  }
}

void readMtls(Reader& r, const YAML::Node& node, Config& cfg) {
  const std::string path = "auth.mtls";
  r.allowKeys(node, path, {"rules"});
  const YAML::Node rules = node["rules"];
  if (!rules || !rules.IsSequence() || rules.size() == 0) {
    r.fail(rules ? rules : node, path + ".rules",
           "list the rules that map a client certificate to a principal ({match: {san_uri: ...}, subject: "
           "...})");
    return;
  }
  static const std::set<std::string> kFields = {"subject_cn", "san_dns", "san_uri", "san_email", "issuer_cn"};
  for (std::size_t i = 0; i < rules.size() && !r.failed(); ++i) {
    const YAML::Node rule = rules[i];
    const std::string rp = path + ".rules[" + std::to_string(i) + "]";
    r.allowKeys(rule, rp, {"match", "subject", "groups", "roles", "tenant"});
    MtlsRule m;
    m.line = rule.Mark().line + 1;
    if (rule["match"]) {
      r.allowKeys(rule["match"], rp + ".match", kFields);
      r.readStringMap(rule, rp, "match", m.match);
    }
    r.read(rule, rp, "subject", m.subject);
    r.readStrings(rule, rp, "groups", m.groups);
    r.readStrings(rule, rp, "roles", m.roles);
    r.read(rule, rp, "tenant", m.tenant);
    if (!r.failed() && m.subject.empty()) r.fail(rule, rp + ".subject", "must not be empty");
    cfg.auth.mtlsRules.push_back(std::move(m));
  }
  if (!r.failed() && cfg.server.tlsClientCaFile.empty()) {
    r.fail(node, path, "needs server.tls.client_ca_file: the CA that issues client certificates");
  }
}

}  // namespace

void readSecretSource(Reader& r, const YAML::Node& node, const std::string& path, SecretSource& out) {
  if (r.failed()) return;
  if (!node.IsMap()) {
    r.fail(node, path, "expected {env: VARIABLE} or {file: PATH}; never the secret itself");
    return;
  }
  r.allowKeys(node, path, {"env", "file"});
  r.read(node, path, "env", out.env);
  r.read(node, path, "file", out.file);
  if (!r.failed() && out.env.empty() == out.file.empty()) {
    r.fail(node, path,
           "set exactly one of `env` (a variable name) or `file` (a path); never the value itself");
  }
}

void readSecurity(Reader& r, const YAML::Node& root, Config& cfg) {
  if (r.failed()) return;
  r.read(root, "", "state_dir", cfg.stateDir);
  cfg.stateDir = besideConfig(cfg.path, cfg.stateDir.empty() ? "state" : cfg.stateDir);
  if (const YAML::Node auth = root["auth"]; auth && !r.failed()) {
    r.allowKeys(
        auth, "auth",
        {"resource", "anonymous", "oauth", "api_keys", "ldap", "mtls", "failed_attempts", "stdio_groups"});
    r.read(auth, "auth", "resource", cfg.auth.resource);
    r.read(auth, "auth", "anonymous", cfg.auth.anonymousNonLoopback);
    if (auth["oauth"] && !r.failed()) readOAuth(r, auth["oauth"], cfg);
    if (const YAML::Node keys = auth["api_keys"]; keys && !r.failed()) {
      r.allowKeys(keys, "auth.api_keys", {"enabled", "database"});
      cfg.auth.apiKeys = true;
      r.read(keys, "auth.api_keys", "enabled", cfg.auth.apiKeys);
      r.read(keys, "auth.api_keys", "database", cfg.auth.apiKeyDatabase);
    }
    if (auth["ldap"] && !r.failed()) readLdap(r, auth["ldap"], cfg);
    if (auth["mtls"] && !r.failed()) readMtls(r, auth["mtls"], cfg);
    if (const YAML::Node failed = auth["failed_attempts"]; failed && !r.failed()) {
      r.allowKeys(failed, "auth.failed_attempts", {"per_ip", "per_user"});
      readRate(r, failed["per_ip"], "auth.failed_attempts.per_ip", cfg.auth.failuresPerIp);
      readRate(r, failed["per_user"], "auth.failed_attempts.per_user", cfg.auth.failuresPerUser);
    }
    r.readStrings(auth, "auth", "stdio_groups", cfg.auth.stdioGroups);
    cfg.auth.enabled =
        !cfg.auth.oauth.empty() || cfg.auth.apiKeys || cfg.auth.ldap.enabled || !cfg.auth.mtlsRules.empty();
    if (!r.failed() && !cfg.auth.enabled && !cfg.auth.anonymousNonLoopback && cfg.auth.stdioGroups.empty()) {
      r.fail(auth, "auth", "configure at least one of oauth, api_keys, ldap or mtls");
    }
  }
  if (cfg.auth.apiKeyDatabase.empty()) cfg.auth.apiKeyDatabase = cfg.stateDir + "/api-keys.db";
  cfg.auth.apiKeyDatabase = besideConfig(cfg.path, cfg.auth.apiKeyDatabase);
  if (cfg.auth.resource.empty()) {
    cfg.auth.resource = std::string(cfg.server.tlsCertificateFile.empty() ? "http://" : "https://") +
                        (cfg.server.host == "0.0.0.0" ? "localhost" : cfg.server.host) + ":" +
                        std::to_string(cfg.server.port) + cfg.server.endpoint;
  }
  for (auto& o : cfg.auth.oauth)
    if (o.audience.empty()) o.audience = cfg.auth.resource;
  if (const YAML::Node policy = root["policy"]; policy && !r.failed()) {
    if (policy.IsScalar()) {
      cfg.policyFile = policy.Scalar();
    } else {
      r.allowKeys(policy, "policy", {"file", "watch"});
      r.read(policy, "policy", "file", cfg.policyFile);
      r.read(policy, "policy", "watch", cfg.policyWatch);
    }
    if (!r.failed() && cfg.policyFile.empty()) r.fail(policy, "policy", "set file: the policy YAML");
    cfg.policyFile = besideConfig(cfg.path, cfg.policyFile);
  }
  if (const YAML::Node limits = root["rate_limits"]; limits && !r.failed()) {
    r.allowKeys(limits, "rate_limits", {"per_principal", "per_principal_burst", "per_connector", "per_tool"});
    readRate(r, limits["per_principal"], "rate_limits.per_principal", cfg.rateLimits.perPrincipal);
    r.read(limits, "rate_limits", "per_principal_burst", cfg.rateLimits.perPrincipalBurst);
    readRateMap(r, limits, "rate_limits", "per_connector", cfg.rateLimits.perConnector);
    readRateMap(r, limits, "rate_limits", "per_tool", cfg.rateLimits.perTool);
  }
  if (r.failed()) return;
  if (cfg.auth.enabled && cfg.policyFile.empty()) {
    r.fail(root["auth"], "policy",
           "authentication is on but no policy is set: add `policy: policy.yaml` (deny by default) so the "
           "host knows who may use what");
  } else if (!cfg.auth.enabled && !cfg.auth.anonymousNonLoopback && !isLoopbackHost(cfg.server.host)) {
    r.fail(root["server"] ? root["server"] : root, "server.listen",
           "listens beyond loopback without authentication: configure auth (oauth, api_keys, ldap or mtls), "
           "or set auth.anonymous: true to accept unauthenticated callers on purpose");
  }
}

}  // namespace mcphost::config::detail
