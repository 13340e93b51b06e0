#include <catch2/catch.hpp>
#include <thread>

#include "fake_connector.hpp"
#include "protocol/mcp_router.hpp"

using namespace mcphost;
using mcphost::protocol::Json;
using mcphost::testing::FakeConnector;
namespace errc = mcphost::protocol::errc;

namespace {

// Answers every server-to-client request it carries, as a client would, from another thread.
class AnsweringSink final : public protocol::MessageSink {
 public:
  std::shared_ptr<protocol::Session> session;
  std::vector<Json> sent;
  std::vector<std::thread> threads;
  ~AnsweringSink() override {
    for (auto& t : threads) t.join();
  }
  bool send(const Json& message) override {
    sent.push_back(message);
    if (message.contains("method") && message.contains("id")) {
      protocol::Message response;
      response.kind = protocol::MessageKind::kResponse;
      response.id = message["id"];
      response.result = {
          {"role", "assistant"}, {"content", {{"type", "text"}, {"text", "pong"}}}, {"model", "m"}};
      threads.emplace_back([s = session, response] { s->deliverResponse(response); });
    }
    return true;
  }
};

connectors::Outcome askingTool(std::string_view, const Json&, connectors::CallContext& ctx) {
  const Json* answer = ctx.inputResponse("llm");
  if (answer == nullptr || !answer->is_object() || !answer->contains("content")) {
    connectors::InputRequired ask;
    ask.ask("llm", "sampling/createMessage", {{"messages", Json::array()}, {"maxTokens", 5}});
    ask.state = {{"step", 1}};
    return ask;
  }
  return Json{{"content",
               {{{"type", "text"},
                 {"text", (*answer)["content"]["text"].get<std::string>() + "/" +
                              std::to_string(ctx.state().value("step", 0))}}}}};
}

struct Fixture {
  std::shared_ptr<protocol::ChangeBus> bus = std::make_shared<protocol::ChangeBus>();
  std::shared_ptr<FakeConnector> fake = std::make_shared<FakeConnector>();
  std::unique_ptr<connectors::Catalog> catalog;
  std::unique_ptr<protocol::McpRouter> router;

  explicit Fixture(std::size_t pageSize = 500) {
    fake->onDescribe = [] {
      return Expected<connectors::Descriptor, protocol::RpcError>(
          FakeConnector::withTools({"ask", "later", "other"}));
    };
    fake->onCall = [](std::string_view name, const Json& args,
                      connectors::CallContext& ctx) -> connectors::Outcome {
      if (name == "later") {
        return connectors::Deferred{[](connectors::CallContext&) -> connectors::Outcome {
          return Json{{"content", {{{"type", "text"}, {"text", "done"}}}}};
        }};
      }
      return askingTool(name, args, ctx);
    };
    catalog = std::make_unique<connectors::Catalog>(
        std::vector<connectors::ConnectorInstance>{{"fake", false, fake}}, "__", bus);
    REQUIRE(catalog->load());
    protocol::RouterOptions options;
    options.pageSize = pageSize;
    options.clientRequestTimeout = std::chrono::seconds(5);
    router = std::make_unique<protocol::McpRouter>(*catalog, protocol::ServerIdentity{"t", "1", ""}, options);
  }

  static protocol::Message request(std::string method, Json params) {
    protocol::Message m;
    m.id = 9;
    m.method = std::move(method);
    m.params = std::move(params);
    return m;
  }

  static protocol::RequestScope stateless(Json caps = Json::object()) {
    protocol::RequestScope scope;
    scope.era = protocol::Era::kStateless;
    scope.protocolVersion = "2026-07-28";
    scope.clientCapabilities = std::move(caps);
    return scope;
  }
};

}  // namespace

TEST_CASE("version negotiation answers the client's version or the latest") {
  CHECK(protocol::McpRouter::negotiateVersion("2025-06-18") == "2025-06-18");
  CHECK(protocol::McpRouter::negotiateVersion("2025-03-26") == "2025-03-26");
  CHECK(protocol::McpRouter::negotiateVersion("2024-11-05") == "2025-11-25");
  CHECK(protocol::McpRouter::negotiateVersion(42) == "2025-11-25");
}

TEST_CASE("session era: InputRequired becomes a real server-to-client request") {
  Fixture f;
  auto session =
      std::make_shared<protocol::Session>("s", "2025-11-25", Json{{"sampling", Json::object()}}, Json());
  AnsweringSink sink;
  sink.session = session;
  protocol::RequestScope scope;
  scope.session = session;
  scope.clientCapabilities = session->clientCapabilities();
  scope.sink = &sink;
  auto reply = f.router->handle(Fixture::request("tools/call", {{"name", "ask"}}), scope);
  INFO(reply.message.dump());
  CHECK(reply.message["result"]["content"][0]["text"] == "pong/1");
  REQUIRE(sink.sent.size() == 1);
  CHECK(sink.sent[0]["method"] == "sampling/createMessage");
}

TEST_CASE("session era: a client without the capability gets a clear error") {
  Fixture f;
  auto session = std::make_shared<protocol::Session>("s", "2025-11-25", Json::object(), Json());
  AnsweringSink sink;
  sink.session = session;
  protocol::RequestScope scope;
  scope.session = session;
  scope.sink = &sink;
  auto reply = f.router->handle(Fixture::request("tools/call", {{"name", "ask"}}), scope);
  CHECK(reply.message["error"]["message"].get<std::string>().find("sampling") != std::string::npos);
}

TEST_CASE("stateless era: input_required round trip with a sealed requestState") {
  Fixture f;
  auto scope = Fixture::stateless({{"sampling", Json::object()}});
  auto first = f.router->handle(Fixture::request("tools/call", {{"name", "ask"}}), scope);
  const Json& r1 = first.message["result"];
  REQUIRE(r1["resultType"] == "input_required");
  REQUIRE(r1["inputRequests"].contains("llm"));
  REQUIRE(r1["requestState"].is_string());

  Json retry = {{"name", "ask"},
                {"inputResponses", {{"llm", {{"content", {{"type", "text"}, {"text", "pong"}}}}}}},
                {"requestState", r1["requestState"]}};
  auto second = f.router->handle(Fixture::request("tools/call", retry), scope);
  CHECK(second.message["result"]["resultType"] == "complete");
  CHECK(second.message["result"]["content"][0]["text"] == "pong/1");

  retry["requestState"] = r1["requestState"].get<std::string>() + "-TAMPERED";
  auto tampered = f.router->handle(Fixture::request("tools/call", retry), scope);
  CHECK(tampered.message["error"]["code"] == errc::kInvalidParams);
  CHECK(tampered.message["error"]["data"]["reason"] == "invalid_request_state");
  CHECK(tampered.httpStatus == 200);
}

TEST_CASE("stateless era: undeclared capabilities become -32021 with requiredCapabilities") {
  Fixture f;
  auto scope = Fixture::stateless();
  auto reply = f.router->handle(Fixture::request("tools/call", {{"name", "ask"}}), scope);
  CHECK(reply.httpStatus == 400);
  CHECK(reply.message["error"]["code"] == errc::kMissingRequiredCapability);
  CHECK(reply.message["error"]["data"]["requiredCapabilities"].contains("sampling"));
}

TEST_CASE("stateless era: removed methods are 404 -32601 and lists carry cache hints") {
  Fixture f;
  auto scope = Fixture::stateless();
  auto ping = f.router->handle(Fixture::request("ping", Json::object()), scope);
  CHECK(ping.httpStatus == 404);
  CHECK(ping.message["error"]["code"] == errc::kMethodNotFound);
  auto list = f.router->handle(Fixture::request("tools/list", Json::object()), scope);
  CHECK(list.message["result"]["resultType"] == "complete");
  CHECK(list.message["result"]["ttlMs"] == 0);
  CHECK(list.message["result"]["cacheScope"] == "private");
  CHECK(list.message["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "t");
}

TEST_CASE("bad params are -32602 with a message that says what to send") {
  Fixture f;
  protocol::RequestScope scope;
  auto unknown = f.router->handle(Fixture::request("tools/call", {{"name", "nope"}}), scope);
  CHECK(unknown.message["error"]["code"] == errc::kInvalidParams);
  CHECK(unknown.message["error"]["message"] == "Unknown tool: nope");
  auto noName = f.router->handle(Fixture::request("tools/call", {{"arguments", Json::object()}}), scope);
  CHECK(noName.message["error"]["code"] == errc::kInvalidParams);
  auto badArgs = f.router->handle(Fixture::request("tools/call", {{"name", "ask"}, {"arguments", 5}}), scope);
  CHECK(badArgs.message["error"]["code"] == errc::kInvalidParams);
  auto arrayParams = f.router->handle(Fixture::request("tools/list", Json::array()), scope);
  CHECK(arrayParams.message["error"]["code"] == errc::kInvalidParams);
  auto level = f.router->handle(Fixture::request("logging/setLevel", {{"level", "loud"}}), scope);
  CHECK(level.message["error"]["code"] == errc::kInvalidParams);
  auto missing = f.router->handle(Fixture::request("no/such", Json::object()), scope);
  CHECK(missing.message["error"]["code"] == errc::kMethodNotFound);
}

TEST_CASE("pagination walks the list with opaque cursors") {
  Fixture f(2);
  protocol::RequestScope scope;
  auto page1 = f.router->handle(Fixture::request("tools/list", Json::object()), scope).message["result"];
  REQUIRE(page1["tools"].size() == 2);
  REQUIRE(page1.contains("nextCursor"));
  auto page2 = f.router->handle(Fixture::request("tools/list", {{"cursor", page1["nextCursor"]}}), scope)
                   .message["result"];
  CHECK(page2["tools"].size() == 1);
  CHECK_FALSE(page2.contains("nextCursor"));
  auto bad = f.router->handle(Fixture::request("tools/list", {{"cursor", "!!"}}), scope);
  CHECK(bad.message["error"]["code"] == errc::kInvalidParams);
}

TEST_CASE("deferred work runs inline without the tasks extension and as a task with it") {
  Fixture f;
  auto plain = Fixture::stateless();
  auto inlineReply = f.router->handle(Fixture::request("tools/call", {{"name", "later"}}), plain);
  CHECK(inlineReply.message["result"]["content"][0]["text"] == "done");

  auto tasks = Fixture::stateless({{"extensions", {{"io.modelcontextprotocol/tasks", Json::object()}}}});
  auto created =
      f.router->handle(Fixture::request("tools/call", {{"name", "later"}}), tasks).message["result"];
  REQUIRE(created["resultType"] == "task");
  const std::string id = created["taskId"];
  Json status;
  for (int i = 0; i < 100; ++i) {
    status = f.router->handle(Fixture::request("tasks/get", {{"taskId", id}}), tasks).message["result"];
    if (status["status"] == "completed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(status["status"] == "completed");
  CHECK(status["result"]["content"][0]["text"] == "done");
  auto unknown = f.router->handle(Fixture::request("tasks/get", {{"taskId", "nope"}}), tasks);
  CHECK(unknown.message["error"]["code"] == errc::kInvalidParams);
  auto gated = f.router->handle(Fixture::request("tasks/get", {{"taskId", id}}), plain);
  CHECK(gated.message["error"]["code"] == errc::kMissingRequiredCapability);
}

TEST_CASE("completion refs without a name or uri are rejected, not dereferenced") {
  Fixture f;
  protocol::RequestScope scope;
  for (const char* type : {"ref/prompt", "ref/resource"}) {
    auto r = f.router->handle(
        Fixture::request("completion/complete", {{"ref", {{"type", type}}}, {"argument", {{"name", "a"}}}}),
        scope);
    CHECK(r.message["error"]["code"] == errc::kInvalidParams);
  }
}
