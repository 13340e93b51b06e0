#include <algorithm>
#include <chrono>
#include <optional>
#include <sstream>
#include <thread>

#include "conformance_connector.hpp"

namespace mcphost::plugins::conformance {

namespace {

using namespace std::chrono_literals;

const Json kNoArgs = {{"type", "object"}, {"properties", Json::object()}};

Json stringProperty(const char* description) {
  return {{"type", "string"}, {"description", description}};
}

Json objectSchema(Json properties, Json required) {
  Json s = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) s["required"] = std::move(required);
  return s;
}

Json tool(const char* name, const char* description, Json inputSchema) {
  return {{"name", name}, {"description", description}, {"inputSchema", std::move(inputSchema)}};
}

const Json kNameSchema = objectSchema({{"name", {{"type", "string"}}}}, {"name"});
const Json kConfirmSchema = objectSchema({{"ok", {{"type", "boolean"}}}}, {"ok"});

Json elicitParams(std::string message, Json schema) {
  return {{"mode", "form"}, {"message", std::move(message)}, {"requestedSchema", std::move(schema)}};
}

Json samplingParams(const std::string& text, int maxTokens) {
  return {{"messages", {{{"role", "user"}, {"content", {{"type", "text"}, {"text", text}}}}}},
          {"maxTokens", maxTokens}};
}

// A usable sampling answer has a text (or other) content block.
const Json* samplingContent(const Call& ctx, const std::string& key) {
  const Json* r = ctx.inputResponse(key);
  if (r == nullptr || !r->is_object() || !r->contains("content")) return nullptr;
  const Json& c = (*r)["content"];
  if (c.is_array()) return c.empty() ? nullptr : &c[0];
  return c.is_object() ? &c : nullptr;
}

std::string contentText(const Json& block) {
  if (block.value("type", "") == "text" && block.contains("text") && block["text"].is_string()) {
    return block["text"].get<std::string>();
  }
  return block.dump();
}

const Json* rootsAnswer(const Call& ctx, const std::string& key) {
  const Json* r = ctx.inputResponse(key);
  if (r == nullptr || !r->is_object() || !r->contains("roots") || !(*r)["roots"].is_array()) return nullptr;
  return &(*r)["roots"];
}

Json elicitationSchemaDefaults() {
  return objectSchema(
      {{"name", {{"type", "string"}, {"description", "User name"}, {"default", "John Doe"}}},
       {"age", {{"type", "integer"}, {"description", "User age"}, {"default", 30}}},
       {"score", {{"type", "number"}, {"description", "User score"}, {"default", 95.5}}},
       {"status",
        {{"type", "string"},
         {"description", "User status"},
         {"enum", {"active", "inactive", "pending"}},
         {"default", "active"}}},
       {"verified", {{"type", "boolean"}, {"description", "Verification status"}, {"default", true}}}},
      Json::array());
}

Json titled(const char* prefix) {
  return Json::array({{{"const", "value1"}, {"title", std::string("First ") + prefix}},
                      {{"const", "value2"}, {"title", std::string("Second ") + prefix}},
                      {{"const", "value3"}, {"title", std::string("Third ") + prefix}}});
}

Json elicitationSchemaEnums() {
  return objectSchema(
      {{"untitledSingle",
        {{"type", "string"},
         {"description", "Select one option"},
         {"enum", {"option1", "option2", "option3"}}}},
       {"titledSingle",
        {{"type", "string"}, {"description", "Select one option with titles"}, {"oneOf", titled("Option")}}},
       {"legacyEnum",
        {{"type", "string"},
         {"description", "Select one option (legacy)"},
         {"enum", {"opt1", "opt2", "opt3"}},
         {"enumNames", {"Option One", "Option Two", "Option Three"}}}},
       {"untitledMulti",
        {{"type", "array"},
         {"description", "Select multiple options"},
         {"minItems", 1},
         {"maxItems", 3},
         {"items", {{"type", "string"}, {"enum", {"option1", "option2", "option3"}}}}}},
       {"titledMulti",
        {{"type", "array"},
         {"description", "Select multiple options with titles"},
         {"minItems", 1},
         {"maxItems", 3},
         {"items", {{"anyOf", titled("Choice")}}}}}},
      Json::array());
}

Json jsonSchema202012() {
  return Json::parse(R"({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
              "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                   "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                   "phone": {"type": "string"}, "email": {"type": "string"}},
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": false})");
}

// Sleeps in small steps so a cancelled task frees its worker promptly.
void interruptibleSleep(const Call& ctx, std::chrono::milliseconds total) {
  const auto until = std::chrono::steady_clock::now() + total;
  while (!ctx.cancelled() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
}

const Json kConfirmDeleteSchema = objectSchema({{"confirm", {{"type", "boolean"}}}}, {"confirm"});

// The tasks-extension tools (io.modelcontextprotocol/tasks); nullopt when name is not one.
std::optional<Outcome> callTaskTool(std::string_view name, const Json& args, Call& ctx) {
  if (name == "greet") return textResult("Hello, " + args.value("name", std::string()) + "!");
  if (name == "slow_compute") {
    const double requested =
        args.contains("seconds") && args["seconds"].is_number() ? args["seconds"].get<double>() : 1.0;
    const std::string label =
        args.contains("label") && args["label"].is_string() ? args["label"].get<std::string>() : "";
    const double seconds = std::clamp(requested, 0.0, 3600.0);  // bounded: it holds a worker
    return Deferred{[seconds, label](Call& c) -> Outcome {
      // Inline (no task) runs are capped so a request cannot hold a worker for long.
      const double capped = c.inTask() ? seconds : std::min(seconds, 5.0);
      interruptibleSleep(c, std::chrono::milliseconds(static_cast<long>(std::max(0.0, capped) * 1000)));
      std::ostringstream text;
      text << "slow_compute finished after " << seconds << "s" << (label.empty() ? "" : " (" + label + ")");
      return textResult(text.str());
    }};
  }
  if (name == "failing_job") {
    return Deferred{[](Call& c) -> Outcome {
                      if (c.inTask()) interruptibleSleep(c, 1000ms);
                      Json r = textResult("failing_job: the job reported an error");
                      r["isError"] = true;
                      return r;
                    },
                    /*taskRequired=*/true};
  }
  if (name == "protocol_error_job") {
    return Deferred{[](Call& c) -> Outcome {
      if (c.inTask()) interruptibleSleep(c, 300ms);
      return Error{MCPH_INTERNAL, "protocol_error_job: simulated internal failure"};
    }};
  }
  if (name == "confirm_delete") {
    const std::string file = args.value("filename", std::string());
    return Deferred{[file](Call& c) -> Outcome {
      const Json* r = c.inputResponse("confirm");
      if (r == nullptr || !r->is_object()) {
        return InputRequired{}.ask("confirm", "elicitation/create",
                                   elicitParams("Delete " + file + "?", kConfirmDeleteSchema));
      }
      const Json* content = acceptedContent(c, "confirm");
      const bool yes = content != nullptr && content->value("confirm", false);
      return textResult((yes ? "Deleted " : "Kept ") + file);
    }};
  }
  if (name == "multi_input") {
    return Deferred{[](Call& c) -> Outcome {
      const Json* a = c.inputResponse("first");
      const Json* b = c.inputResponse("second");
      if (a == nullptr || !a->is_object() || b == nullptr || !b->is_object()) {
        InputRequired ask;
        ask.ask("first", "elicitation/create", elicitParams("First input: your name?", kNameSchema));
        ask.ask("second", "elicitation/create", elicitParams("Second input: confirm?", kConfirmDeleteSchema));
        return ask;
      }
      return textResult("multi_input complete: first=" + a->value("action", std::string("none")) +
                        ", second=" + b->value("action", std::string("none")));
    }};
  }
  if (name == "test_tool_with_task") {
    const Json* c = acceptedContent(ctx, "user_name");
    if (c == nullptr || !c->contains("name") || !(*c)["name"].is_string()) {
      return InputRequired{}.ask("user_name", "elicitation/create",
                                 elicitParams("What is your name?", kNameSchema));
    }
    const std::string who = (*c)["name"].get<std::string>();
    return Deferred{[who](Call& job) -> Outcome {
                      if (job.inTask()) interruptibleSleep(job, 300ms);
                      return textResult("Hello, " + who + "! (task result)");
                    },
                    /*taskRequired=*/true};
  }
  return std::nullopt;
}

// A string field of the verified requestState, or "" (state is client-echoed: never assume shape).
std::string stateField(const Call& ctx, const char* key) {
  const Json& state = ctx.state();
  if (!state.is_object() || !state.contains(key) || !state[key].is_string()) return {};
  return state[key].get<std::string>();
}

// Runs an elicitation tool: asks under key "form" and formats the answer.
Outcome elicitationTool(Call& ctx, Json params, const std::string& label) {
  const Json* answer = ctx.inputResponse("form");
  if (answer == nullptr || !answer->is_object() || !answer->contains("action") ||
      !(*answer)["action"].is_string()) {
    return InputRequired{}.ask("form", "elicitation/create", std::move(params));
  }
  Json content = answer->value("content", Json::object());
  return textResult(label + ": action=" + (*answer)["action"].get<std::string>() +
                    ", content=" + content.dump());
}

}  // namespace

Json conformanceTools() {
  return Json::array({
      tool("test_simple_text", "Returns a simple text content block", kNoArgs),
      tool("test_image_content", "Returns an image content block (PNG)", kNoArgs),
      tool("test_audio_content", "Returns an audio content block (audio/wav)", kNoArgs),
      tool("test_embedded_resource", "Returns an embedded resource content block", kNoArgs),
      tool("test_multiple_content_types", "Returns text + image + embedded resource", kNoArgs),
      tool("test_tool_with_logging", "Emits 3 notifications/message while running", kNoArgs),
      tool("test_tool_with_progress", "Emits 3 notifications/progress (0,50,100 of 100)", kNoArgs),
      tool("test_error_handling", "Always returns a tool execution error (isError: true)", kNoArgs),
      tool("test_sampling",
           "Asks the client for an LLM completion (sampling/createMessage) and returns the answer",
           objectSchema({{"prompt", stringProperty("The prompt to send to the LLM")}}, {"prompt"})),
      tool("test_elicitation", "Asks the client for user input (elicitation/create) and returns the answer",
           objectSchema({{"message", stringProperty("The message to show the user")}}, {"message"})),
      tool("test_elicitation_sep1034_defaults",
           "Elicitation with defaults for every primitive type (SEP-1034)", kNoArgs),
      tool("test_elicitation_sep1330_enums", "Elicitation with all 5 enum schema variants (SEP-1330)",
           kNoArgs),
      tool(
          "test_reconnection",
          "Closes its POST SSE stream mid-call; the result is delivered after GET + Last-Event-ID (SEP-1699)",
          kNoArgs),
      tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features (SEP-1613)",
           jsonSchema202012()),
      tool("test_missing_capability",
           "Needs the sampling client capability (an input_required sampling request)", kNoArgs),
      tool("test_streaming_elicitation", "Plain result; its response stream carries no JSON-RPC requests",
           kNoArgs),
      tool("test_logging_tool", "Logs one info message (only delivered when the request set a logLevel)",
           kNoArgs),
      tool("test_trigger_tool_change", "Publishes notifications/tools/list_changed to listeners", kNoArgs),
      tool("test_trigger_prompt_change", "Publishes notifications/prompts/list_changed to listeners",
           kNoArgs),
      tool("test_input_required_result_elicitation", "MRTR: asks for the caller name (elicitation)", kNoArgs),
      tool("test_input_required_result_sampling", "MRTR: asks for an LLM completion (sampling)", kNoArgs),
      tool("test_input_required_result_list_roots", "MRTR: asks for the client roots (roots/list)", kNoArgs),
      tool("test_input_required_result_request_state", "MRTR: round-trips integrity-protected requestState",
           kNoArgs),
      tool("test_input_required_result_multiple_inputs", "MRTR: elicitation + sampling + roots in one round",
           kNoArgs),
      tool("test_input_required_result_multi_round",
           "MRTR: two elicitation rounds with evolving requestState", kNoArgs),
      tool("test_input_required_result_tampered_state",
           "MRTR: rejects a retry whose requestState fails verification", kNoArgs),
      tool("test_input_required_result_capabilities", "MRTR: only requests input kinds the client declared",
           kNoArgs),
      tool("test_x_mcp_header",
           "Echoes region; region is mirrored into the Mcp-Param-Region header (SEP-2243)",
           objectSchema({{"region",
                          {{"type", "string"},
                           {"description", "mirrored into Mcp-Param-Region"},
                           {"x-mcp-header", "Region"}}},
                         {"level", {{"type", "integer"}, {"description", "not mirrored"}}}},
                        Json::array())),
      tool("greet", "Returns \"Hello, {name}!\" synchronously (never a task)",
           objectSchema({{"name", {{"type", "string"}}}}, {"name"})),
      tool("slow_compute",
           "Sleeps `seconds` then returns; runs as a task when the client declares the tasks extension",
           objectSchema({{"seconds", {{"type", "number"}, {"minimum", 0}}}, {"label", {{"type", "string"}}}},
                        Json::array())),
      tool("failing_job", "Task-only job whose tool execution fails (result.isError) after ~1s", kNoArgs),
      tool("protocol_error_job",
           "Job that fails with a JSON-RPC error (-32603); as a task it ends in status failed", kNoArgs),
      tool("confirm_delete", "Asks for confirmation (elicitation) before \"deleting\" a file",
           objectSchema({{"filename", {{"type", "string"}}}}, {"filename"})),
      tool("multi_input", "Needs two elicitation answers at once", kNoArgs),
      tool("test_tool_with_task", "Asks for user_name (input_required), then escalates to a task", kNoArgs),
  });
}

Outcome callConformanceTool(std::string_view name, const Json& arguments, Call& ctx, const Host& host) {
  const Json args = arguments.is_object() ? arguments : Json::object();
  if (name == "test_simple_text") return textResult("This is a simple text response for testing.");
  if (name == "test_image_content") {
    return Json{{"content", {{{"type", "image"}, {"data", kPng1x1}, {"mimeType", "image/png"}}}}};
  }
  if (name == "test_audio_content") {
    return Json{{"content", {{{"type", "audio"}, {"data", kWavEmpty}, {"mimeType", "audio/wav"}}}}};
  }
  if (name == "test_embedded_resource") {
    Json r = {{"uri", "test://embedded-resource"},
              {"mimeType", "text/plain"},
              {"text", "This is an embedded resource content."}};
    return Json{{"content", {{{"type", "resource"}, {"resource", r}}}}};
  }
  if (name == "test_multiple_content_types") {
    Json r = {{"uri", "test://mixed-content-resource"},
              {"mimeType", "application/json"},
              {"text", Json{{"test", "data"}, {"value", 123}}.dump()}};
    return Json{{"content",
                 {{{"type", "text"}, {"text", "Multiple content types test:"}},
                  {{"type", "image"}, {"data", kPng1x1}, {"mimeType", "image/png"}},
                  {{"type", "resource"}, {"resource", r}}}}};
  }
  if (name == "test_tool_with_logging") {
    ctx.log(LogLevel::kInfo, "conformance-fixture", "Tool execution started");
    std::this_thread::sleep_for(50ms);
    ctx.log(LogLevel::kInfo, "conformance-fixture", "Tool processing data");
    std::this_thread::sleep_for(50ms);
    ctx.log(LogLevel::kInfo, "conformance-fixture", "Tool execution completed");
    return textResult("Tool with logging executed successfully");
  }
  if (name == "test_tool_with_progress") {
    for (int p : {0, 50, 100}) {
      ctx.progress(p, 100, "Completed step " + std::to_string(p) + " of 100");
      if (p < 100) std::this_thread::sleep_for(50ms);
    }
    return textResult("Progress tool finished");
  }
  if (name == "test_error_handling") {
    Json r = textResult("This tool intentionally returns an error for testing");
    r["isError"] = true;
    return r;
  }
  if (name == "test_sampling") {
    const Json* c = samplingContent(ctx, "llm");
    if (c == nullptr) {
      return InputRequired{}.ask("llm", "sampling/createMessage",
                                 samplingParams(args.value("prompt", ""), 100));
    }
    return textResult("LLM response: " + contentText(*c));
  }
  if (name == "test_elicitation") {
    Json schema = objectSchema(
        {{"username", stringProperty("User's response")}, {"email", stringProperty("User's email address")}},
        {"username", "email"});
    return elicitationTool(ctx, elicitParams(args.value("message", ""), schema), "User response");
  }
  if (name == "test_elicitation_sep1034_defaults") {
    return elicitationTool(
        ctx,
        elicitParams("Please review and update the form fields with defaults", elicitationSchemaDefaults()),
        "Elicitation completed");
  }
  if (name == "test_elicitation_sep1330_enums") {
    return elicitationTool(
        ctx, elicitParams("Please select options from the enum fields", elicitationSchemaEnums()),
        "Elicitation completed");
  }
  if (name == "test_reconnection") {
    ctx.releaseStream();
    std::this_thread::sleep_for(100ms);
    return textResult("Reconnection test completed successfully.");
  }
  if (name == "json_schema_2020_12_tool") {
    return textResult("JSON Schema 2020-12 tool called with: " + args.dump());
  }
  if (name == "test_missing_capability") {
    if (ctx.inputResponse("llm_answer") == nullptr) {
      return InputRequired{}.ask("llm_answer", "sampling/createMessage",
                                 samplingParams("Reply with the single word: pong", 16));
    }
    return textResult("sampling round-trip complete");
  }
  if (name == "test_streaming_elicitation") {
    return textResult("stream observed: result frames only, no top-level requests");
  }
  if (name == "test_logging_tool") {
    ctx.log(LogLevel::kInfo, "conformance-fixture", "test_logging_tool ran");
    return textResult("logged through the request-scoped, logLevel-gated channel");
  }
  if (name == "test_trigger_tool_change") {
    host.toolsChanged();
    return textResult("tools list_changed published");
  }
  if (name == "test_trigger_prompt_change") {
    host.promptsChanged();
    return textResult("prompts list_changed published");
  }
  if (name == "test_input_required_result_elicitation") {
    const Json* c = acceptedContent(ctx, "user_name");
    if (c == nullptr || !c->contains("name") || !(*c)["name"].is_string()) {
      return InputRequired{}.ask("user_name", "elicitation/create",
                                 elicitParams("What is your name?", kNameSchema));
    }
    return textResult("Hello, " + (*c)["name"].get<std::string>() + "!");
  }
  if (name == "test_input_required_result_sampling") {
    const Json* c = samplingContent(ctx, "capital_question");
    if (c == nullptr) {
      return InputRequired{}.ask("capital_question", "sampling/createMessage",
                                 samplingParams("What is the capital of France?", 100));
    }
    return textResult("Sampling response: " + contentText(*c));
  }
  if (name == "test_input_required_result_list_roots") {
    const Json* roots = rootsAnswer(ctx, "client_roots");
    if (roots == nullptr) return InputRequired{}.ask("client_roots", "roots/list", nullptr);
    std::string uris;
    for (const auto& root : *roots) {
      if (!uris.empty()) uris += ", ";
      uris += root.is_object() ? root.value("uri", "") : "";
    }
    return textResult("Client exposed " + std::to_string(roots->size()) + " root(s): " + uris);
  }
  if (name == "test_input_required_result_request_state" ||
      name == "test_input_required_result_tampered_state") {
    const bool requestStateTool = name == "test_input_required_result_request_state";
    const char* marker = requestStateTool ? "request_state" : "tampered_state";
    if (acceptedContent(ctx, "confirm") == nullptr || stateField(ctx, "tool") != marker) {
      InputRequired ask;
      ask.ask("confirm", "elicitation/create", elicitParams("Please confirm", kConfirmSchema));
      ask.state = {{"tool", marker}};
      return ask;
    }
    return textResult(requestStateTool ? "state-ok: requestState verified and confirmation received"
                                       : "integrity-ok: requestState verified");
  }
  if (name == "test_input_required_result_multiple_inputs") {
    const Json* who = acceptedContent(ctx, "user_name");
    const Json* greeting = samplingContent(ctx, "greeting");
    const Json* roots = rootsAnswer(ctx, "client_roots");
    if (who == nullptr || !who->contains("name") || greeting == nullptr || roots == nullptr) {
      InputRequired ask;
      ask.ask("user_name", "elicitation/create", elicitParams("What is your name?", kNameSchema));
      ask.ask("greeting", "sampling/createMessage", samplingParams("Generate a greeting", 50));
      ask.ask("client_roots", "roots/list", nullptr);
      ask.state = {{"tool", "multiple_inputs"}};
      return ask;
    }
    return textResult(contentText(*greeting) + " " +
                      contentText({{"type", "text"}, {"text", (*who)["name"]}}) + " (" +
                      std::to_string(roots->size()) + " root(s) visible)");
  }
  if (name == "test_input_required_result_multi_round") {
    const Json& state = ctx.state();
    const int round = stateField(ctx, "tool") == "multi_round" && state["round"].is_number_integer()
                          ? state["round"].get<int>()
                          : 0;
    if (round == 0) {
      InputRequired ask;
      ask.ask("step1", "elicitation/create", elicitParams("Step 1: What is your name?", kNameSchema));
      ask.state = {{"tool", "multi_round"}, {"round", 1}};
      return ask;
    }
    if (round == 1) {
      const Json* c = acceptedContent(ctx, "step1");
      std::string who = c != nullptr && c->contains("name") && (*c)["name"].is_string()
                            ? (*c)["name"].get<std::string>()
                            : "unknown";
      InputRequired ask;
      ask.ask("step2", "elicitation/create",
              elicitParams("Step 2: What is your favorite color?",
                           objectSchema({{"color", {{"type", "string"}}}}, {"color"})));
      ask.state = {{"tool", "multi_round"}, {"round", 2}, {"name", who}};
      return ask;
    }
    const Json* c = acceptedContent(ctx, "step2");
    std::string color = c != nullptr && c->contains("color") && (*c)["color"].is_string()
                            ? (*c)["color"].get<std::string>()
                            : "unknown";
    return textResult("Multi-round complete: " + stateField(ctx, "name") + " likes " + color);
  }
  if (name == "test_input_required_result_capabilities") {
    if (ctx.hasInputResponses()) return textResult("Capability-aware input requests fulfilled");
    InputRequired ask;
    if (ctx.clientSupports("elicitation")) {
      ask.ask("user_name", "elicitation/create", elicitParams("What is your name?", kNameSchema));
    }
    if (ctx.clientSupports("sampling")) {
      ask.ask("greeting", "sampling/createMessage", samplingParams("Generate a short greeting", 50));
    }
    if (ctx.clientSupports("roots")) ask.ask("client_roots", "roots/list", nullptr);
    if (ask.requests.empty()) return textResult("No declared client capability supports an input request");
    return ask;
  }
  if (auto taskOutcome = callTaskTool(name, args, ctx)) return std::move(*taskOutcome);
  if (name == "test_x_mcp_header") {
    return textResult("region=" + (args.contains("region") && args["region"].is_string()
                                       ? args["region"].get<std::string>()
                                       : std::string("<none>")));
  }
  return Error{MCPH_INVALID_ARGUMENT, "Unknown tool: " + std::string(name)};
}

}  // namespace mcphost::plugins::conformance
