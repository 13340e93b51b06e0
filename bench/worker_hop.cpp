// bench-worker-hop: what running a connector in a sandboxed worker process costs, measured in
// ONE process against the same connector library called in-process, so that both sides share
// the machine's state of the moment.
//
//   (a) in-process: the echo library loaded with mcphost::testing::FakeHost and called through
//       the C ABI (handle -> complete), sequentially;
//   (b) worker: the same calls through connectors::WorkerConnector::callTool, i.e. the host's
//       supervisor, the framed socketpair, mcphost-worker (sandboxed as in production) and the
//       same library behind it, sequentially. (a) and (b) run in alternating blocks, so that
//       background noise lands on both; hop = p50(b) - p50(a);
//   (c) the worker's VmRSS (and Pss) while it is idle: once ready, after the sequential calls
//       and after a concurrent run;
//   (d) start-up: create a WorkerConnector and time until its first callTool returns (spawn,
//       hello/welcome, sandbox, sha256 check, dlopen, create, describe, the call), repeated;
//   (e) for context, calls/s through one worker from --threads caller threads.
// Prints a text report on stderr and one JSON object on stdout. Nothing here is a test: the
// figures depend on the machine (bench/README.md, "Worker goals").
//
//   bench-worker-hop [--connector DIR] [--calls N] [--warmup N] [--blocks N] [--starts N]
//                    [--threads T] [--seconds S] [--text TEXT] [--no-sandbox]
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "app/connector_factory.hpp"
#include "connectors/manifest.hpp"
#include "connectors/worker/worker_connector.hpp"
#include "mcphost/connector.h"
#include "mcphost/testing/fake_host.hpp"
#include "observe/log.hpp"
#include "sandbox/sandbox.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using mcphost::connectors::Json;

constexpr std::string_view kUsage = R"(usage: bench-worker-hop [options]
  --connector DIR   the echo connector's folder (default: ../bench/connectors/echo beside bin/)
  --calls N         measured sequential calls on each side (default 20000)
  --warmup N        unmeasured calls on each side first (default 2000)
  --blocks N        the measured calls alternate between the sides in N blocks (default 10)
  --starts N        worker start-ups timed (default 20)
  --threads T       caller threads of the concurrent run (default 16; 0 skips it)
  --seconds S       length of the concurrent run (default 3)
  --text TEXT       the echoed text (default: the 43 bytes test_simple_text answers)
  --no-sandbox      start the worker without its sandbox (to see what the sandbox costs)
)";

struct Options {
  std::string connectorDir;
  long calls = 20000;
  long warmup = 2000;
  long blocks = 10;
  long starts = 20;
  long threads = 16;
  double seconds = 3;
  std::string text = "This is a simple text response for testing.";
  bool sandbox = true;
};

[[noreturn]] void die(const std::string& message) {
  std::cerr << "bench-worker-hop: " << message << "\n";
  std::exit(2);
}

long parseCount(const std::string& name, const std::string& text) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 0) die("bad value for " + name + ": '" + text + "'");
  return v;
}

std::string exeDir() {
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

Options parseOptions(int argc, char** argv) {
  Options o;
  o.connectorDir = (fs::path(exeDir()).parent_path() / "bench" / "connectors" / "echo").string();
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& key = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) die(key + " needs a value");
      return args[++i];
    };
    if (key == "-h" || key == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (key == "--connector") {
      o.connectorDir = value();
    } else if (key == "--calls") {
      o.calls = parseCount(key, value());
    } else if (key == "--warmup") {
      o.warmup = parseCount(key, value());
    } else if (key == "--blocks") {
      o.blocks = std::max(1L, parseCount(key, value()));
    } else if (key == "--starts") {
      o.starts = parseCount(key, value());
    } else if (key == "--threads") {
      o.threads = parseCount(key, value());
    } else if (key == "--seconds") {
      o.seconds = static_cast<double>(parseCount(key, value()));
    } else if (key == "--text") {
      o.text = value();
    } else if (key == "--no-sandbox") {
      o.sandbox = false;
    } else {
      die("unknown option '" + key + "' (see --help)");
    }
  }
  if (o.calls < 1) die("--calls must be at least 1");
  return o;
}

// ------------------------------------------------------------------------------- statistics

struct Latencies {
  std::size_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;  // µs
};

// Exact nearest-rank percentiles over the full sample, as mcp-loadgen computes them.
Latencies summarize(std::vector<std::uint64_t> nanos) {
  Latencies l;
  l.count = nanos.size();
  if (nanos.empty()) return l;
  std::sort(nanos.begin(), nanos.end());
  auto at = [&](double q) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(nanos.size())));
    return static_cast<double>(nanos[std::min(nanos.size() - 1, rank == 0 ? 0 : rank - 1)]) / 1000.0;
  };
  l.p50 = at(0.50);
  l.p90 = at(0.90);
  l.p99 = at(0.99);
  l.max = static_cast<double>(nanos.back()) / 1000.0;
  long double sum = 0;
  for (auto n : nanos) sum += n;
  l.mean = static_cast<double>(sum / static_cast<long double>(nanos.size()) / 1000.0L);
  return l;
}

double round1(double v) {
  return std::round(v * 10.0) / 10.0;
}

Json latencyJson(const Latencies& l) {
  return {{"count", l.count},     {"p50", round1(l.p50)}, {"p90", round1(l.p90)},
          {"p99", round1(l.p99)}, {"max", round1(l.max)}, {"mean", round1(l.mean)}};
}

std::uint64_t nanosSince(Clock::time_point t0) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

// ------------------------------------------------------------------------------------ /proc

struct Memory {
  long rssKb = -1;
  long hwmKb = -1;
  long anonKb = -1;
  long fileKb = -1;
  long pssKb = -1;  // RSS with shared pages divided among their sharers: what the worker costs
};

long statusField(const std::string& text, std::string_view name) {
  const auto at = text.find(std::string(name) + ":");
  return at == std::string::npos ? -1 : std::strtol(text.c_str() + at + name.size() + 1, nullptr, 10);
}

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Memory readMemory(pid_t pid) {
  Memory m;
  const std::string base = "/proc/" + std::to_string(pid);
  const std::string status = readAll(base + "/status");
  m.rssKb = statusField(status, "VmRSS");
  m.hwmKb = statusField(status, "VmHWM");
  m.anonKb = statusField(status, "RssAnon");
  m.fileKb = statusField(status, "RssFile");
  m.pssKb = statusField(readAll(base + "/smaps_rollup"), "Pss");
  return m;
}

Json memoryJson(const Memory& m) {
  return {{"rss_kb", m.rssKb},
          {"hwm_kb", m.hwmKb},
          {"rss_anon_kb", m.anonKb},
          {"rss_file_kb", m.fileKb},
          {"pss_kb", m.pssKb}};
}

// The mcphost-worker children of this process. The supervisor logs the pid only at info level,
// and this tool runs at warn, so the pid comes from /proc: children named mcphost-worker.
std::vector<pid_t> workerPids() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = readAll("/proc/" + name + "/stat");
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) continue;
    const std::string comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    if (comm == "mcphost-worker" && ppid == self) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  ::closedir(dir);
  return out;
}

// --------------------------------------------------------------------------- the worker side

// The back-channel of a call from an anonymous loopback client that declared no capabilities:
// what the router hands a connector on the demo configuration, minus the transport.
class QuietContext final : public mcphost::connectors::CallContext {
 public:
  void progress(double, std::optional<double>, std::string_view) override {}
  void log(mcphost::connectors::LogLevel, std::string_view, const Json&) override {}
  [[nodiscard]] const Json* inputResponse(std::string_view) const override { return nullptr; }
  [[nodiscard]] bool hasInputResponses() const override { return false; }
  [[nodiscard]] const Json& inputResponses() const override { return null_; }
  [[nodiscard]] const Json& state() const override { return null_; }
  [[nodiscard]] bool clientSupports(std::string_view) const override { return false; }
  [[nodiscard]] bool cancelled() const override { return false; }
  [[nodiscard]] const mcphost::connectors::Caller& caller() const override { return caller_; }
  void closeResponseStream() override {}

 private:
  Json null_;
  mcphost::connectors::Caller caller_;
};

// The WorkerSpec that app/connector_factory.cpp's makeNative builds for
// `{id: echo, connector: echo}` with the default timeouts: the same checks before any vendor
// code runs, the same sandbox section (sandboxFor is private to the factory, so it is repeated
// here; keep the two in step) and the same environment.
mcphost::connectors::WorkerSpec makeSpec(const std::string& connectorDir, bool sandboxOn) {
  namespace c = mcphost::connectors;
  auto manifest = c::loadManifest((fs::path(connectorDir) / "connector.json").string());
  if (!manifest) die(manifest.error());
  if (auto ok = c::verifyLibrary(*manifest); !ok) die(ok.error());
  if (auto ok = c::checkAbi(*manifest, MCPH_ABI_MAJOR, MCPH_ABI_MINOR); !ok) die(ok.error());
  const c::ConnectorManifest& m = *manifest;

  c::WorkerSpec spec;
  spec.connectorId = "echo";
  spec.workerBinary = mcphost::app::workerBinaryPath();
  spec.manifestName = m.name;
  spec.library = m.library;
  spec.sha256 = m.sha256;
  for (const auto& secret : m.secrets) spec.declaredSecrets.push_back(secret.name);

  Json ro = Json::array();
  for (const auto& p : mcphost::sandbox::defaultReadOnlyPaths()) ro.push_back(p);
  ro.push_back(fs::path(m.library).parent_path().string());
  for (const auto& p : m.readPaths) ro.push_back(p);
  Json rw = Json::array();
  for (const auto& p : mcphost::sandbox::defaultReadWritePaths()) rw.push_back(p);
  for (const auto& p : m.writePaths) rw.push_back(p);
  spec.sandbox = {{"disabled", !sandboxOn},
                  {"readOnlyPaths", std::move(ro)},
                  {"readWritePaths", std::move(rw)},
                  {"network", m.network},
                  {"allowProcesses", m.limits.maxProcesses > 0},
                  {"maxProcesses", m.limits.maxProcesses},
                  {"maxOpenFiles", m.limits.maxOpenFiles == 0 ? 256 : m.limits.maxOpenFiles},
                  {"cpuSeconds", m.limits.cpuSeconds},
                  {"memoryBytes", m.limits.memoryBytes},
                  {"pidsMax", m.limits.maxProcesses + 64}};
#ifndef MCPHOST_SANITIZE
  // As in the factory: sanitizer runtimes reserve terabytes of shadow memory.
  spec.sandbox["addressSpaceBytes"] = m.limits.addressSpaceBytes;
#endif
  if (::geteuid() == 0) {
    spec.sandbox["runAsUid"] = 65534;
    spec.sandbox["runAsGid"] = 65534;
  }
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "MCPHOST_CONNECTOR=echo"};
  return spec;
}

// One call's answer must be the echoed text, or the figures measure an error path.
bool echoed(const Json& result, const std::string& text) {
  return result.is_object() && !result.value("isError", false) && result.contains("content") &&
         result["content"].is_array() && result["content"].size() == 1 &&
         result["content"][0].value("text", "") == text;
}

bool workerCall(mcphost::connectors::WorkerConnector& worker, const Json& args, const std::string& text,
                std::string* problem = nullptr) {
  QuietContext ctx;
  auto out = worker.callTool("echo", args, ctx);
  if (const Json* result = out.get_if<Json>(); result != nullptr && echoed(*result, text)) return true;
  if (problem != nullptr) {
    if (const auto* error = out.get_if<mcphost::connectors::RpcError>())
      *problem = error->message;
    else if (const Json* result = out.get_if<Json>())
      *problem = "unexpected result " + result->dump().substr(0, 200);
    else
      *problem = "unexpected outcome (input required or deferred)";
  }
  return false;
}

void sleepSeconds(double s) {
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parseOptions(argc, argv);
  // Info lines (one per worker start) would land in the timed start-ups; warnings still show,
  // e.g. a sandbox measure this kernel cannot enforce.
  mcphost::log::setLevel(mcphost::log::Level::kWarn);
  const Json args = {{"text", o.text}};
  const auto spec = makeSpec(o.connectorDir, o.sandbox);

  // (a) in-process through the C ABI.
  mcphost::testing::FakeHost fake;
  if (auto created = fake.createFromDirectory(o.connectorDir); !created.ok())
    die("in-process create failed: " + created.error);
  auto fakeCall = [&] {
    const auto r = fake.callTool("echo", args);
    return r.ok() && echoed(r.result, o.text);
  };

  // (b) the worker, started once; describe() returns when its first start-up is done.
  auto worker = mcphost::connectors::WorkerConnector::create(spec);
  if (auto described = worker->describe(); !described)
    die("the worker did not start: " + described.error().message);
  std::string problem;
  if (!workerCall(*worker, args, o.text, &problem)) die("the worker's echo failed: " + problem);
  const auto pids = workerPids();
  if (pids.size() != 1) die("expected one mcphost-worker child, found " + std::to_string(pids.size()));
  const pid_t workerPid = pids.front();
  sleepSeconds(1);
  const Memory ready = readMemory(workerPid);

  for (long i = 0; i < o.warmup; ++i) {
    if (!fakeCall()) die("in-process echo failed during warm-up");
    if (!workerCall(*worker, args, o.text, &problem)) die("worker echo failed during warm-up: " + problem);
  }
  std::vector<std::uint64_t> inProcess;
  std::vector<std::uint64_t> viaWorker;
  inProcess.reserve(static_cast<std::size_t>(o.calls));
  viaWorker.reserve(static_cast<std::size_t>(o.calls));
  long errors = 0;
  for (long b = 0; b < o.blocks; ++b) {
    const long n = o.calls / o.blocks + (b < o.calls % o.blocks ? 1 : 0);
    for (long i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      const bool ok = fakeCall();
      inProcess.push_back(nanosSince(t0));
      if (!ok) ++errors;
    }
    for (long i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      const bool ok = workerCall(*worker, args, o.text);
      viaWorker.push_back(nanosSince(t0));
      if (!ok) ++errors;
    }
  }
  const Latencies a = summarize(inProcess);
  const Latencies b = summarize(viaWorker);
  sleepSeconds(1);
  const Memory afterSequential = readMemory(workerPid);

  // (e) concurrent callers on one worker: does the channel cap what the HTTP runs can reach?
  double concurrentRate = -1;
  long concurrentErrors = 0;
  Memory afterConcurrent;
  if (o.threads > 0) {
    std::atomic<bool> stop{false};
    std::atomic<long> done{0};
    std::atomic<long> failed{0};
    std::vector<std::thread> callers;
    const auto t0 = Clock::now();
    for (long t = 0; t < o.threads; ++t) {
      callers.emplace_back([&] {
        long mine = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          if (workerCall(*worker, args, o.text))
            ++mine;
          else
            ++failed;
        }
        done += mine;
      });
    }
    sleepSeconds(o.seconds);
    stop = true;
    for (auto& t : callers) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    concurrentRate = static_cast<double>(done.load()) / elapsed;
    concurrentErrors = failed.load();
    sleepSeconds(1);
    afterConcurrent = readMemory(workerPid);
  }
  worker->shutdown();
  worker.reset();

  // (d) start-up to first answer, each on a fresh WorkerConnector (a fresh process).
  std::vector<std::uint64_t> startNanos;
  long startFailures = 0;
  for (long i = 0; i < o.starts; ++i) {
    const auto t0 = Clock::now();
    auto fresh = mcphost::connectors::WorkerConnector::create(spec);
    const bool ok = workerCall(*fresh, args, o.text, &problem);
    startNanos.push_back(nanosSince(t0));
    if (!ok) {
      ++startFailures;
      std::cerr << "bench-worker-hop: start " << i << " failed: " << problem << "\n";
    }
    fresh->shutdown();
  }
  const Latencies s = summarize(startNanos);
  const double hop = b.p50 - a.p50;

  std::fprintf(stderr,
               "bench-worker-hop: echo of %zu bytes, %ld calls per side in %ld alternating blocks%s\n",
               o.text.size(), o.calls, o.blocks, o.sandbox ? "" : ", sandbox OFF");
  std::fprintf(stderr, "  in-process (FakeHost, C ABI)  p50 %7.1f  p90 %7.1f  p99 %7.1f  max %8.1f µs\n",
               a.p50, a.p90, a.p99, a.max);
  std::fprintf(stderr, "  worker (WorkerConnector)      p50 %7.1f  p90 %7.1f  p99 %7.1f  max %8.1f µs\n",
               b.p50, b.p90, b.p99, b.max);
  std::fprintf(stderr, "  hop (p50 worker - p50 in-process): %.1f µs; p99 difference %.1f µs; errors %ld\n",
               hop, b.p99 - a.p99, errors);
  std::fprintf(stderr, "  idle worker pid %d: VmRSS %ld kB ready, %ld kB after the sequential calls",
               workerPid, ready.rssKb, afterSequential.rssKb);
  if (o.threads > 0) std::fprintf(stderr, ", %ld kB after the concurrent run", afterConcurrent.rssKb);
  std::fprintf(stderr, " (Pss %ld kB ready)\n", ready.pssKb);
  if (o.threads > 0) {
    std::fprintf(stderr, "  %ld caller threads on one worker: %.0f calls/s (%ld errors)\n", o.threads,
                 concurrentRate, concurrentErrors);
  }
  std::fprintf(stderr,
               "  start to first answer, %ld starts: median %.1f ms, p90 %.1f ms, max %.1f ms (%ld failed)\n",
               o.starts, s.p50 / 1000, s.p90 / 1000, s.max / 1000, startFailures);

  Json out = {{"tool", "bench-worker-hop"},
              {"text_bytes", o.text.size()},
              {"sandbox", o.sandbox},
              {"calls", o.calls},
              {"blocks", o.blocks},
              {"errors", errors},
              {"in_process_us", latencyJson(a)},
              {"worker_us", latencyJson(b)},
              {"hop_p50_us", round1(hop)},
              {"hop_p99_us", round1(b.p99 - a.p99)},
              {"worker_pid", workerPid},
              {"worker_memory",
               {{"ready", memoryJson(ready)},
                {"after_sequential", memoryJson(afterSequential)},
                {"after_concurrent", o.threads > 0 ? memoryJson(afterConcurrent) : Json(nullptr)}}},
              {"concurrent",
               {{"threads", o.threads},
                {"seconds", o.seconds},
                {"calls_per_s", round1(concurrentRate)},
                {"errors", concurrentErrors}}},
              {"start_ms",
               {{"count", s.count},
                {"failures", startFailures},
                {"p50", round1(s.p50 / 1000)},
                {"p90", round1(s.p90 / 1000)},
                {"max", round1(s.max / 1000)},
                {"mean", round1(s.mean / 1000)}}}};
  std::cout << out.dump() << "\n";
  return errors == 0 && startFailures == 0 && concurrentErrors == 0 ? 0 : 1;
}
