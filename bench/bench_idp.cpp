// A loopback identity provider for bench/auth.sh: serves discovery and JWKS (the test fixture
// tests/support/test_idp.cpp, real RSA keys) and prints its issuer and one signed token for the
// audience given, then serves until stdin closes.
//
//   bench-idp AUDIENCE   ->  line 1: issuer URL, line 2: an RS256 access token valid 1 hour
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "support/test_idp.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: bench-idp AUDIENCE\n";
    return 2;
  }
  char dir[] = "/tmp/bench-idp.XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 1;
  mcphost::test::TestIdentityProvider idp(dir);
  const long long now = std::time(nullptr);
  std::cout << idp.issuer() << "\n"
            << idp.mint({{"sub", "bench"}, {"groups", {"bench"}}, {"exp", now + 3600}}, argv[1]) << "\n"
            << std::flush;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  std::system((std::string("rm -rf ") + dir).c_str());
  return 0;
}
