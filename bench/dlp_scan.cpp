// bench-dlp: DLP scanning throughput over mixed text (goal: >= 100 MB/s on the 2-core
// reference machine). Generates deterministic text (prose, JSON-ish lines, log lines, numbers,
// 16-digit order ids that fail Luhn, version strings) with PII sprinkled at roughly one finding
// per 3 KB, splits it into ~64 KB tool results and masks every built-in detector. Reports the
// median of 5 runs for the mixed text and for the same text without PII.
//   bench-dlp [--mb N]   (default 64)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dlp/dlp_engine.hpp"

namespace {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

constexpr std::string_view kWords[] = {
    "the",     "customer", "order",   "shipped", "invoice", "account",  "payment", "request",
    "service", "network",  "status",  "pending", "review",  "data",     "report",  "Monday",
    "quarter", "revenue",  "growth",  "support", "ticket",  "resolved", "product", "release",
    "version", "update",   "cluster", "node",    "latency", "error",    "and",     "of",
    "to",      "in",       "for",     "with",    "on",      "is",       "was",     "by"};

std::string digits(Rng& rng, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + rng.below(10)));
  return s;
}

// A 16-digit number starting with 4 whose Luhn check fails: a card-shaped order id.
std::string orderId(Rng& rng) {
  std::string s = "4" + digits(rng, 15);
  int sum = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    int d = s[s.size() - 1 - i] - '0';
    if (i % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  if (sum % 10 == 0) s.back() = static_cast<char>('0' + (s.back() - '0' + 1) % 10);
  return s;
}

std::string pii(Rng& rng) {
  switch (rng.below(9)) {
    case 0:
      return "user" + digits(rng, 4) + "@example.com";
    case 1:
      return "(415) 555-" + digits(rng, 4);
    case 2:
      return "4111 1111 1111 1111";
    case 3:
      return "078-05-" + std::to_string(1000 + rng.below(9000));
    case 4:
      return "DE89 3704 0044 0532 0130 00";
    case 5:
      return "10." + std::to_string(rng.below(256)) + "." + std::to_string(rng.below(256)) + ".7";
    case 6:
      return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
             "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    case 7:
      return "AKIAIOSFODNN7EXAMPLE";
    default:
      return "+44 20 7946 " + digits(rng, 4);
  }
}

std::string line(Rng& rng) {
  std::string s;
  switch (rng.below(4)) {
    case 0:
      for (std::size_t i = 0, n = 8 + rng.below(12); i < n; ++i) {
        s += kWords[rng.below(std::size(kWords))];
        s += ' ';
      }
      s += "order " + orderId(rng) + ".";
      break;
    case 1:
      s = R"({"id": )" + digits(rng, 6) + R"(, "status": "shipped", "sku": "SKU-)" + digits(rng, 5) +
          R"(", "total": )" + digits(rng, 3) + "." + digits(rng, 2) + R"(, "ref": ")" + orderId(rng) +
          R"("})";
      break;
    case 2:
      s = "2024-05-" + digits(rng, 2) + "T12:" + digits(rng, 2) + ":" + digits(rng, 2) +
          ".123Z INFO [worker-" + digits(rng, 1) + "] request handled in " + digits(rng, 2) +
          "ms path=/api/v1/items/" + digits(rng, 5) + " build 1.2." + digits(rng, 1) + ".4.5";
      break;
    default:
      s = "total " + digits(rng, 7) + " items, ratio 0." + digits(rng, 4) + ", batch " + digits(rng, 12) +
          ", std::vector<int> at 0x7ffd" + digits(rng, 8);
  }
  return s + '\n';
}

constexpr std::size_t kChunkBytes = std::size_t{64} * 1024;

std::vector<std::string> generate(std::size_t bytes, bool withPii) {
  Rng rng(42);
  std::vector<std::string> chunks;
  std::string chunk;
  std::size_t total = 0;
  std::size_t untilPii = 2048 + rng.below(2048);
  while (total < bytes) {
    std::string l = line(rng);
    if (l.size() >= untilPii) {
      if (withPii) l.insert(l.size() - 1, " contact " + pii(rng));
      untilPii = 2048 + rng.below(2048);
    } else {
      untilPii -= l.size();
    }
    total += l.size();
    chunk += l;
    if (chunk.size() >= kChunkBytes) {
      chunks.push_back(std::move(chunk));
      chunk.clear();
    }
  }
  if (!chunk.empty()) chunks.push_back(std::move(chunk));
  return chunks;
}

struct RunResult {
  double mbPerSecond = 0;
  std::size_t findings = 0;
};

RunResult measure(const mcphost::dlp::Engine& engine, const std::vector<std::string>& chunks) {
  std::size_t bytes = 0;
  for (const auto& c : chunks) bytes += c.size();
  const mcphost::dlp::ScanTarget target{"tool", "bench", "bench.read", nullptr, "tenant"};
  std::vector<double> rates;
  std::size_t findings = 0;
  for (int run = 0; run < 5; ++run) {
    std::vector<nlohmann::json> results;
    results.reserve(chunks.size());
    for (const auto& c : chunks)
      results.push_back({{"content", nlohmann::json::array({{{"type", "text"}, {"text", c}}})}});
    findings = 0;
    const auto start = std::chrono::steady_clock::now();
    for (auto& r : results) {
      const auto p = engine.protect(r, target, [](std::string_view) { return false; });
      for (const auto& f : p.findings) findings += f.count;
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    rates.push_back(static_cast<double>(bytes) / (1024.0 * 1024.0) / took.count());
  }
  std::sort(rates.begin(), rates.end());
  return {rates[rates.size() / 2], findings};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t mb = 64;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mb") == 0 && i + 1 < argc) {
      mb = static_cast<std::size_t>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: bench-dlp [--mb N]\n");
      return 2;
    }
  }
  mcphost::dlp::Settings settings;
  mcphost::dlp::RuleConfig rule;
  rule.name = "mask-all";
  rule.detectors = {"*"};
  settings.rules = {rule};
  auto engine = mcphost::dlp::Engine::create(settings);
  if (!engine) {
    std::fprintf(stderr, "bench-dlp: %s\n", engine.error().c_str());
    return 1;
  }
  const auto mixed = generate(mb << 20U, true);
  const auto clean = generate(mb << 20U, false);
  const RunResult m = measure(**engine, mixed);
  std::printf("dlp mixed: %.1f MB/s (findings %zu)\n", m.mbPerSecond, m.findings);
  const RunResult c = measure(**engine, clean);
  std::printf("dlp clean: %.1f MB/s (findings %zu)\n", c.mbPerSecond, c.findings);
  return 0;
}
