/*
** minimal.c -- a connector in plain C99 against mcphost/connector.h alone: no C++, no
** libraries beyond the C standard library. Any language with a C FFI can do the same.
**
** One tool, hello {who?: string}: "Hello, <who>!", or "Hello, <caller>!" with the subject of
** the authenticated caller when `who` is missing. Read it for the raw ABI:
**   - mcph_connector_entry_v1 returns a static mcph_connector_api_v1. Its struct_size tells the
**     host which members this library was compiled with, so a newer host (with more members
**     appended) still loads it; abi_major/abi_minor say which headers it was built against.
**   - create() allocates the instance and destroy() frees it: whoever allocates frees, and
**     nothing is ever freed across the boundary.
**   - describe() hands out connector-owned text (here static), valid until the next describe().
**   - handle() accepts a call by returning MCPH_OK and then finishes it exactly once with the
**     host's complete(), now or later, from any thread. Refusing (an unknown method) is a
**     non-OK return with set_error() and no complete().
**   - caller_get() shows the copy-out protocol: ask for the size with a NULL buffer
**     (MCPH_OUT_OF_RANGE and the length), then copy into a buffer of that size.
**   - Host members appended after ABI 1.0 would be used only behind MCPH_HOST_HAS(api, member).
**
** Build: sdk/examples/CMakeLists.txt (or this folder's CMakeLists.txt) with
** mcphost_add_connector(); manifest: connector.json.in next to this file.
**
** A real C connector would parse JSON with a library (jansson, cJSON, yyjson). To stay
** dependency-free this one has a small scanner that finds a top-level member of an object and
** hands a string value on still escaped: escaped JSON string content is valid inside another
** JSON string as it is, so nothing here ever unescapes or re-escapes text.
*/
#include <stdlib.h>
#include <string.h>

#include "mcphost/connector.h"

/* The instance. mcph_connector is an opaque pointer to this struct: the connector defines it. */
struct mcph_connector_s {
  const mcph_host_api_v1* api; /* host-owned, valid until destroy() */
  mcph_host host;
};

static mcph_bytes text_bytes(const char* s) {
  mcph_bytes b;
  b.ptr = s;
  b.len = strlen(s);
  return b;
}

static int bytes_equal(mcph_bytes b, const char* s) {
  size_t n = strlen(s);
  return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

/* ---- a tiny JSON scanner: enough to find a member, never a full parser ---- */

static const char* skip_ws(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) ++p;
  return p;
}

/* p is at a '"'; returns the position after the closing quote, or NULL. */
static const char* skip_string(const char* p, const char* end) {
  for (++p; p < end; ++p) {
    if (*p == '\\') {
      ++p; /* the escaped character, whatever it is */
    } else if (*p == '"') {
      return p + 1;
    }
  }
  return NULL;
}

/* Skips one JSON value (any type); returns the position after it, or NULL. */
static const char* skip_value(const char* p, const char* end) {
  int depth = 0;
  p = skip_ws(p, end);
  do {
    if (p >= end) return NULL;
    if (*p == '"') {
      p = skip_string(p, end);
      if (p == NULL) return NULL;
    } else if (*p == '{' || *p == '[') {
      ++depth;
      ++p;
    } else if (*p == '}' || *p == ']') {
      if (depth == 0) return NULL;
      --depth;
      ++p;
    } else if (depth == 0) { /* a scalar at the top: number, true, false, null */
      while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\r' &&
             *p != '\n')
        ++p;
      return p;
    } else {
      ++p; /* inside a container: separators and scalar characters */
    }
  } while (depth > 0);
  return p;
}

/* Finds the member `key` of the JSON object in json; *value is its raw text (a string
** value includes its quotes). Returns 1 when found. */
static int find_member(mcph_bytes json, const char* key, mcph_bytes* value) {
  const char* end;
  const char* p;
  size_t key_len = strlen(key);
  if (json.ptr == NULL) return 0;
  end = json.ptr + json.len;
  p = skip_ws(json.ptr, end);
  if (p >= end || *p != '{') return 0;
  ++p;
  for (;;) {
    const char* name;
    const char* after_name;
    const char* value_end;
    p = skip_ws(p, end);
    if (p >= end || *p != '"') return 0; /* also the '}' of an empty object */
    name = p + 1;
    after_name = skip_string(p, end);
    if (after_name == NULL) return 0;
    p = skip_ws(after_name, end);
    if (p >= end || *p != ':') return 0;
    p = skip_ws(p + 1, end);
    value_end = skip_value(p, end);
    if (value_end == NULL) return 0;
    /* A key spelled with escapes (e.g. "\u0077ho") is not recognised: fine for an example. */
    if ((size_t)(after_name - 1 - name) == key_len && memcmp(name, key, key_len) == 0) {
      value->ptr = p;
      value->len = (size_t)(value_end - p);
      return 1;
    }
    p = skip_ws(value_end, end);
    if (p >= end || *p != ',') return 0;
    ++p;
  }
}

/* The still-escaped contents of the string member `key`, when it is a non-empty string. */
static int find_string(mcph_bytes json, const char* key, mcph_bytes* contents) {
  mcph_bytes raw;
  if (!find_member(json, key, &raw) || raw.len < 3 || raw.ptr[0] != '"') return 0;
  contents->ptr = raw.ptr + 1;
  contents->len = raw.len - 2;
  return 1;
}

/* ---- the connector ---- */

static const char kDescriptor[] =
    "{\"tools\":[{\"name\":\"hello\",\"title\":\"Hello\","
    "\"description\":\"Says hello to `who`, or to the calling user.\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"who\":{\"type\":\"string\"}},"
    "\"additionalProperties\":false},"
    "\"annotations\":{\"readOnlyHint\":true,\"openWorldHint\":false}}]}";

static mcph_status minimal_create(const mcph_host_api_v1* api, mcph_host host, mcph_bytes config_json_in,
                                  mcph_connector* instance_out) {
  struct mcph_connector_s* self;
  (void)config_json_in; /* this connector has no configuration (configSchema allows none) */
  self = (struct mcph_connector_s*)malloc(sizeof *self);
  if (self == NULL) {
    api->set_error(host, text_bytes("minimal: out of memory"));
    return MCPH_RESOURCE_EXHAUSTED;
  }
  self->api = api;
  self->host = host;
  api->log(host, MCPH_LOG_INFO, text_bytes("minimal connector ready"));
  *instance_out = self;
  return MCPH_OK;
}

static void minimal_destroy(mcph_connector self) {
  free(self);
}

static mcph_status minimal_describe(mcph_connector self, mcph_bytes* descriptor_out) {
  (void)self;
  descriptor_out->ptr = kDescriptor;
  descriptor_out->len = sizeof kDescriptor - 1;
  return MCPH_OK;
}

/* Completes c with "Hello, <who>!" as a CallToolResult; who is escaped JSON string content. */
static void complete_hello(const mcph_host_api_v1* api, mcph_call c, mcph_bytes who) {
  static const char kPrefix[] = "{\"content\":[{\"type\":\"text\",\"text\":\"Hello, ";
  static const char kSuffix[] = "!\"}]}";
  size_t len = (sizeof kPrefix - 1) + who.len + (sizeof kSuffix - 1);
  char* result = (char*)malloc(len);
  mcph_bytes out;
  if (result == NULL) {
    api->complete(c, MCPH_RESOURCE_EXHAUSTED, text_bytes("minimal: out of memory"));
    return;
  }
  memcpy(result, kPrefix, sizeof kPrefix - 1);
  if (who.len > 0) memcpy(result + sizeof kPrefix - 1, who.ptr, who.len);
  memcpy(result + sizeof kPrefix - 1 + who.len, kSuffix, sizeof kSuffix - 1);
  out.ptr = result;
  out.len = len;
  api->complete(c, MCPH_OK, out); /* the host copies; our buffer is ours to free */
  free(result);
}

static mcph_status minimal_handle(mcph_connector self, mcph_call c, mcph_bytes method_in,
                                  mcph_bytes params_in) {
  const mcph_host_api_v1* api = self->api;
  mcph_bytes name;
  mcph_bytes arguments;
  mcph_bytes who;
  char* caller;
  size_t caller_len = 0;

  if (!bytes_equal(method_in, "tools/call")) {
    api->set_error(self->host, text_bytes("minimal: only tools/call is implemented"));
    return MCPH_UNIMPLEMENTED; /* refused: c is not completed */
  }
  if (!find_string(params_in, "name", &name) || !bytes_equal(name, "hello")) {
    /* A protocol-level failure: status != MCPH_OK and a plain-text message. */
    api->complete(c, MCPH_INVALID_ARGUMENT, text_bytes("Unknown tool"));
    return MCPH_OK;
  }
  if (find_member(params_in, "arguments", &arguments) && find_string(arguments, "who", &who)) {
    complete_hello(api, c, who);
    return MCPH_OK;
  }

  /* No `who`: greet the caller. Copy-out: probe the size, then fetch. */
  if (api->caller_get(c, NULL, 0, &caller_len) != MCPH_OUT_OF_RANGE || caller_len == 0) {
    complete_hello(api, c, text_bytes("stranger"));
    return MCPH_OK;
  }
  caller = (char*)malloc(caller_len);
  if (caller == NULL) {
    api->complete(c, MCPH_RESOURCE_EXHAUSTED, text_bytes("minimal: out of memory"));
    return MCPH_OK;
  }
  if (api->caller_get(c, caller, caller_len, &caller_len) == MCPH_OK) {
    mcph_bytes json;
    json.ptr = caller;
    json.len = caller_len;
    if (!find_string(json, "subject", &who)) who = text_bytes("stranger");
  } else {
    who = text_bytes("stranger");
  }
  complete_hello(api, c, who); /* who may point into caller: free after completing */
  free(caller);
  return MCPH_OK;
}

/* flags 0: the host never calls two of these functions at once for one instance. */
static const mcph_connector_api_v1 kTable = {
    .struct_size = (uint32_t)sizeof(mcph_connector_api_v1),
    .abi_major = MCPH_ABI_MAJOR,
    .abi_minor = MCPH_ABI_MINOR,
    .flags = 0,
    .name = "minimal", /* equals the manifest's "name" */
    .version = "1.0.0",
    .create = minimal_create,
    .destroy = minimal_destroy,
    .describe = minimal_describe,
    .handle = minimal_handle,
    .check_health = NULL, /* optional: no backend to probe */
};

MCPH_EXPORT const mcph_connector_api_v1* mcph_connector_entry_v1(uint32_t host_abi_major,
                                                                 uint32_t host_abi_minor) {
  (void)host_abi_minor; /* this connector needs nothing beyond ABI 1.0 */
  return host_abi_major == MCPH_ABI_MAJOR ? &kTable : NULL;
}
