// A connector that misbehaves on request: each tool is one fault the host must survive.
// The tests in tests/integration/worker_faults_test.cpp call these and check that the host
// stays up, other connectors keep answering, and the caller learns which connector failed.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "mcphost/connector.hpp"

namespace {

using mcphost::sdk::Call;
using mcphost::sdk::Error;
using mcphost::sdk::Host;
using mcphost::sdk::Json;
using mcphost::sdk::Outcome;
using mcphost::sdk::textResult;

Json tool(const char* name, Json properties = Json::object()) {
  return Json{{"name", name},
              {"description", std::string("fault: ") + name},
              {"inputSchema", {{"type", "object"}, {"properties", std::move(properties)}}}};
}

Json strictSchema() {
  return Json::parse(R"({
    "type": "object",
    "required": ["count", "name"],
    "additionalProperties": false,
    "properties": {
      "count": {"type": "integer", "minimum": 1, "maximum": 10, "multipleOf": 1},
      "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
      "name": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$"},
      "mode": {"enum": ["fast", "safe"]},
      "version": {"const": 2},
      "when": {"type": "string", "format": "date-time"},
      "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3, "uniqueItems": true},
      "owner": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
      "either": {"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 1}]},
      "any": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
      "not_zero": {"not": {"const": 0}},
      "limits": {"type": "object", "minProperties": 1, "maxProperties": 2}
    }
  })");
}

std::string errnoText(const char* what) {
  return std::string(what) + " failed: " + std::strerror(errno);
}

class Faulty final : public mcphost::sdk::Connector {
 public:
  Faulty(Host& host, const Json& config) : Connector(host) {
    // A slow backend at start-up: create() takes this long (start-up timeout tests).
    std::this_thread::sleep_for(std::chrono::milliseconds(config.value("startDelayMs", 0)));
    tools().add(tool("ok"), [](const Json&, Call&) -> Outcome { return textResult("ok"); });
    // Which instance answered (per-region instances differ only in their config).
    tools().add(tool("label"), [label = config.value("label", std::string())](const Json&, Call&) -> Outcome {
      return textResult(label);
    });
    tools().add(tool("whoami"), [](const Json&, Call& call) -> Outcome {
      return textResult("correlation " + call.correlationId());
    });
    // The identity the host passed with the call (SDK caller-identity service).
    tools().add(tool("caller"),
                [](const Json&, Call& call) -> Outcome { return textResult(call.caller().dump()); });
    tools().add(tool("segfault"), [](const Json&, Call&) -> Outcome {
      std::raise(SIGSEGV);
      return textResult("unreachable");
    });
    tools().add(tool("spin"), [](const Json&, Call&) -> Outcome {
      volatile unsigned long n = 0;
      for (;;) n = n + 1;  // ignores cancellation on purpose
    });
    tools().add(tool("hog"), [](const Json&, Call&) -> Outcome {
      // 10 GB, touched page by page so the memory is real.
      std::vector<std::unique_ptr<char[]>> blocks;
      for (int i = 0; i < 160; ++i) {
        blocks.emplace_back(new char[64 << 20]);
        std::memset(blocks.back().get(), 1, 64 << 20);
      }
      return textResult("allocated 10 GB");
    });
    tools().add(tool("noisy"), [](const Json&, Call&) -> Outcome {
      std::printf("garbage on stdout \x01\x02\xff not a frame\n");
      std::fflush(stdout);
      std::fprintf(stderr, "%s\n", std::string(20000, 'x').c_str());
      return textResult("printed garbage");
    });
    tools().add(tool("read_file", {{"path", {{"type", "string"}}}}), [](const Json& args, Call&) -> Outcome {
      const std::string path = args.value("path", "");
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Error{MCPH_PERMISSION_DENIED, errnoText(("open " + path).c_str())};
      char buf[64];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      ::close(fd);
      return textResult("read " + std::to_string(n) + " bytes of " + path);
    });
    tools().add(tool("write_file", {{"path", {{"type", "string"}}}}), [](const Json& args, Call&) -> Outcome {
      const std::string path = args.value("path", "");
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) return Error{MCPH_PERMISSION_DENIED, errnoText(("create " + path).c_str())};
      [[maybe_unused]] auto n = ::write(fd, "escaped\n", 8);
      ::close(fd);
      return textResult("wrote " + path);
    });
    tools().add(tool("connect", {{"port", {{"type", "integer"}}}}), [](const Json& args, Call&) -> Outcome {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return Error{MCPH_PERMISSION_DENIED, errnoText("socket")};
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(args.value("port", 1)));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      const int saved = errno;
      ::close(fd);
      if (rc != 0)
        return Error{MCPH_PERMISSION_DENIED, std::string("connect failed: ") + std::strerror(saved)};
      return textResult("connected to the host's loopback");
    });
    tools().add(tool("fork_child"), [](const Json&, Call&) -> Outcome {
      const pid_t pid = ::fork();
      if (pid < 0) return Error{MCPH_PERMISSION_DENIED, errnoText("fork")};
      if (pid == 0) {
        ::setsid();
        for (;;) ::pause();  // would outlive the worker if nothing stopped it
      }
      return textResult("forked child " + std::to_string(pid));
    });
    tools().add(tool("bad_frame"), [](const Json&, Call&) -> Outcome {
      const char garbage[] = "\x00\x00\x00\x05hello";  // a frame that is not JSON
      [[maybe_unused]] auto n = ::write(3, garbage, sizeof garbage - 1);
      std::this_thread::sleep_for(std::chrono::seconds(1));
      return textResult("sent a bad frame");
    });
    tools().add(tool("huge_frame"), [](const Json&, Call&) -> Outcome {
      const unsigned char header[] = {0x7f, 0xff, 0xff, 0xff};  // announces 2 GiB
      [[maybe_unused]] auto n = ::write(3, header, sizeof header);
      std::this_thread::sleep_for(std::chrono::seconds(1));
      return textResult("sent an oversized frame");
    });
    tools().add(tool("double_complete"), [](const Json&, Call& call) -> Outcome {
      // Completes through the raw ABI, then returns a result the SDK completes again.
      const std::string first = textResult("first").dump();
      call.host().api()->complete(call.handle(), MCPH_OK, mcph_bytes{first.data(), first.size()});
      return textResult("second");
    });
    tools().add(tool("throws"),
                [](const Json&, Call&) -> Outcome { throw std::runtime_error("vendor bug"); });
    // Returns what it was given: text as text content, `structured` as structuredContent. The
    // data-protection tests send personal data through it and check what the client sees.
    tools().add(tool("echo", {{"text", {{"type", "string"}}}, {"structured", {{"type", "object"}}}}),
                [](const Json& args, Call&) -> Outcome {
                  Json result = textResult(args.value("text", ""));
                  if (args.contains("structured")) result["structuredContent"] = args["structured"];
                  return result;
                });
    // A schema with every keyword kind the host validates; the call only says "valid".
    tools().add(Json{{"name", "strict"},
                     {"description", "validation: every keyword kind"},
                     {"inputSchema", strictSchema()}},
                [](const Json&, Call&) -> Outcome { return textResult("valid"); });
  }
};

}  // namespace

MCPHOST_CONNECTOR(Faulty, "faulty", "1.0.0", MCPH_CONNECTOR_CONCURRENT)
