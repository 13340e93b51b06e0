
#include "conformance_connector.hpp"

namespace mcphost::plugins::conformance {

namespace {

Json textMessage(std::string text) {
  return {{"role", "user"}, {"content", {{"type", "text"}, {"text", std::move(text)}}}};
}

Json argumentSpec(const char* name, const char* description) {
  return {{"name", name}, {"description", description}, {"required", true}};
}

std::string stringArg(const Json& arguments, const char* key) {
  if (arguments.is_object()) {
    if (auto it = arguments.find(key); it != arguments.end() && it->is_string())
      return it->get<std::string>();
  }
  return {};
}

}  // namespace

Json textResult(std::string text) {
  return {{"content", Json::array({{{"type", "text"}, {"text", std::move(text)}}})}};
}

const Json* acceptedContent(const Call& ctx, const std::string& key) {
  const Json* answer = ctx.inputResponse(key);
  if (answer == nullptr || !answer->is_object()) return nullptr;
  auto action = answer->find("action");
  auto content = answer->find("content");
  if (action == answer->end() || *action != "accept" || content == answer->end() || !content->is_object()) {
    return nullptr;
  }
  return &*content;
}

Json conformancePrompts() {
  return Json::array({
      {{"name", "test_simple_prompt"}, {"description", "A simple prompt without arguments"}},
      {{"name", "test_prompt_with_arguments"},
       {"description", "A prompt with two required arguments"},
       {"arguments",
        {argumentSpec("arg1", "First test argument"), argumentSpec("arg2", "Second test argument")}}},
      {{"name", "test_prompt_with_embedded_resource"},
       {"description", "A prompt that embeds a resource"},
       {"arguments", {argumentSpec("resourceUri", "URI of the resource to embed")}}},
      {{"name", "test_prompt_with_image"}, {"description", "A prompt that includes an image"}},
      {{"name", "test_input_required_result_prompt"},
       {"description", "MRTR: needs elicitation input before rendering"}},
  });
}

Outcome getConformancePrompt(std::string_view name, const Json& arguments, Call& ctx) {
  if (name == "test_simple_prompt") {
    return Json{{"messages", {textMessage("This is a simple prompt for testing.")}}};
  }
  if (name == "test_prompt_with_arguments") {
    if (stringArg(arguments, "arg1").empty() && stringArg(arguments, "arg2").empty()) {
      return Error{MCPH_INVALID_ARGUMENT, "Missing required arguments: arg1, arg2"};
    }
    return Json{{"messages",
                 {textMessage("Prompt with arguments: arg1='" + stringArg(arguments, "arg1") + "', arg2='" +
                              stringArg(arguments, "arg2") + "'")}}};
  }
  if (name == "test_prompt_with_embedded_resource") {
    std::string uri = stringArg(arguments, "resourceUri");
    if (uri.empty()) return Error{MCPH_INVALID_ARGUMENT, "Missing required argument: resourceUri"};
    Json resource = {
        {"uri", uri}, {"mimeType", "text/plain"}, {"text", "Embedded resource content for testing."}};
    return Json{{"messages",
                 {{{"role", "user"}, {"content", {{"type", "resource"}, {"resource", resource}}}},
                  textMessage("Please process the embedded resource above.")}}};
  }
  if (name == "test_prompt_with_image") {
    return Json{
        {"messages",
         {{{"role", "user"}, {"content", {{"type", "image"}, {"data", kPng1x1}, {"mimeType", "image/png"}}}},
          textMessage("Please analyze the image above.")}}};
  }
  if (name == "test_input_required_result_prompt") {
    const Json* content = acceptedContent(ctx, "user_context");
    if (content == nullptr || !content->contains("context") || !(*content)["context"].is_string()) {
      Json schema = {
          {"type", "object"}, {"properties", {{"context", {{"type", "string"}}}}}, {"required", {"context"}}};
      return InputRequired{}.ask("user_context", "elicitation/create",
                                 {{"mode", "form"},
                                  {"message", "What context should the prompt use?"},
                                  {"requestedSchema", schema}});
    }
    return Json{{"messages",
                 {textMessage("Use the following context: " + (*content)["context"].get<std::string>())}}};
  }
  return Error{MCPH_INVALID_ARGUMENT, "Unknown prompt: " + std::string(name)};
}

Json conformanceResources() {
  return Json::array({
      {{"uri", "test://static-text"},
       {"name", "static-text"},
       {"title", "static-text"},
       {"description", "A static text resource"},
       {"mimeType", "text/plain"}},
      {{"uri", "test://static-binary"},
       {"name", "static-binary"},
       {"title", "static-binary"},
       {"description", "A static binary (PNG) resource"},
       {"mimeType", "image/png"}},
      {{"uri", "test://watched-resource"},
       {"name", "watched-resource"},
       {"title", "watched-resource"},
       {"description", "Subscribable resource"},
       {"mimeType", "text/plain"}},
  });
}

Json conformanceResourceTemplates() {
  return Json::array({{{"uriTemplate", "test://template/{id}/data"},
                       {"name", "template"},
                       {"title", "Resource Template"},
                       {"description", "Template with {id} substitution"},
                       {"mimeType", "application/json"}}});
}

Outcome readConformanceResource(std::string_view uri) {
  auto contents = [&](Json item) { return Json{{"contents", Json::array({std::move(item)})}}; };
  if (uri == "test://static-text") {
    return contents({{"uri", uri},
                     {"mimeType", "text/plain"},
                     {"text", "This is the content of the static text resource."}});
  }
  if (uri == "test://static-binary") {
    return contents({{"uri", uri}, {"mimeType", "image/png"}, {"blob", kPng1x1}});
  }
  if (uri == "test://watched-resource") {
    return contents({{"uri", uri}, {"mimeType", "text/plain"}, {"text", "Watched resource content"}});
  }
  constexpr std::string_view kPrefix = "test://template/";
  constexpr std::string_view kSuffix = "/data";
  if (uri.size() > kPrefix.size() + kSuffix.size() && uri.starts_with(kPrefix) && uri.ends_with(kSuffix) &&
      uri.substr(kPrefix.size(), uri.size() - kPrefix.size() - kSuffix.size()).find('/') ==
          std::string_view::npos) {
    std::string id(uri.substr(kPrefix.size(), uri.size() - kPrefix.size() - kSuffix.size()));
    Json body = {{"id", id}, {"templateTest", true}, {"data", "Data for ID: " + id}};
    return contents({{"uri", uri}, {"mimeType", "application/json"}, {"text", body.dump()}});
  }
  return Error{MCPH_NOT_FOUND, "Resource not found: " + std::string(uri)};
}

Outcome completeConformance(const Json& ref, const Json& argument) {
  std::vector<std::string> candidates;
  const std::string type = ref.value("type", "");
  if (type == "ref/prompt" && ref.value("name", "") == "test_prompt_with_arguments") {
    candidates = {"paris", "park", "party", "test-value"};
  } else if (type == "ref/resource" && ref.value("uri", "") == "test://template/{id}/data") {
    candidates = {"1", "123", "42"};
  }
  const std::string prefix = argument.is_object() ? argument.value("value", "") : "";
  Json values = Json::array();
  for (const auto& c : candidates) {
    if (c.starts_with(prefix) && values.size() < 100) values.push_back(c);
  }
  const auto total = values.size();
  return Json{{"completion", {{"values", std::move(values)}, {"total", total}, {"hasMore", false}}}};
}

Json ConformanceConnector::describe() {
  return Json{{"tools", conformanceTools()},
              {"resources", conformanceResources()},
              {"resourceTemplates", conformanceResourceTemplates()},
              {"prompts", conformancePrompts()}};
}

Outcome ConformanceConnector::callTool(const std::string& name, const Json& arguments, Call& call) {
  return callConformanceTool(name, arguments, call, host());
}

Outcome ConformanceConnector::readResource(const std::string& uri, Call& /*call*/) {
  return readConformanceResource(uri);
}

Outcome ConformanceConnector::getPrompt(const std::string& name, const Json& arguments, Call& call) {
  return getConformancePrompt(name, arguments, call);
}

Outcome ConformanceConnector::complete(const Json& ref, const Json& argument, const Json& /*context*/,
                                       Call& /*call*/) {
  return completeConformance(ref, argument);
}

}  // namespace mcphost::plugins::conformance

// The fixture's handlers are concurrent: the suites run slow, cancellable and input-waiting
// tools side by side.
MCPHOST_CONNECTOR(mcphost::plugins::conformance::ConformanceConnector, "conformance", "1.0.0",
                  MCPH_CONNECTOR_CONCURRENT)
