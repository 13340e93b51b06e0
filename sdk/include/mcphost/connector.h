/*
** mcphost/connector.h -- the stable C ABI between mcphost and a connector library.
**
** A connector is a shared library that exports ONE symbol, mcph_connector_entry_v1. The host
** never links against it: mcphost-worker loads it (inside a sandboxed worker process, one per
** connector instance), calls the entry, and from then on talks to it only through the two
** function tables below. This header is C99 with <stddef.h> and <stdint.h> only, so any
** language with a C FFI can implement a connector.
**
** STABILITY. ABI major 1 is frozen. Both tables are APPEND-ONLY: released members are never
** reordered, retyped or removed; new members go at the end, each group under a comment naming
** the minor version that added it, and MCPH_ABI_MINOR is bumped. Every table starts with
** struct_size, so either side can tell which members the other one was compiled with:
**   - a connector reads an optional host member only through MCPH_HOST_HAS(api, member);
**   - the host reads a connector member only when the connector's struct_size covers it.
** A breaking change would be a new entry symbol (mcph_connector_entry_v2) with new tables; a
** library may export both during a migration window.
**
** DATA. MCP objects cross as UTF-8 JSON text: tool lists, arguments, results are the MCP
** shapes themselves (https://modelcontextprotocol.io/specification), so this ABI does not
** change when MCP grows. The host re-validates everything a connector returns.
**
** OWNERSHIP. Nothing is ever freed across the boundary. Every pointer parameter says who owns
** it, by its name suffix:
**   *_in    borrowed from the caller, valid only until the call returns; copy what you keep.
**   *_out   written by the callee; for connector outputs, connector-owned and valid until the
**           next call of the same function on the same instance (with
**           MCPH_CONNECTOR_CONCURRENT: on the same thread), or until destroy().
**   buf/cap copy-out: the callee copies into the caller's buffer (see MCPH_OUT_OF_RANGE).
** mcph_bytes is a view: never owning, never NUL-terminated, len is in bytes.
**
** THREADS. create() and destroy() are never concurrent with anything. Unless the connector
** sets MCPH_CONNECTOR_CONCURRENT, the host never calls two connector functions at once (but a
** call may complete later, from any thread). With the flag, describe() and handle() may run
** concurrently on several threads. Every host service may be called from any thread.
**
** ERRORS. Status codes are the canonical gRPC numbers. A tool that fails in the MCP sense
** (bad input, a backend said no) completes with MCPH_OK and a CallToolResult carrying
** "isError": true. A non-OK status means the connector itself could not serve the request;
** MCPH_UNAVAILABLE means "retryable: my backend is down". Functions that return a status may
** attach detail with set_error() before returning.
*/
#ifndef MCPHOST_CONNECTOR_H
#define MCPHOST_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCPH_ABI_MAJOR 1u /* breaking change: new *_v2 tables AND a new entry symbol */
#define MCPH_ABI_MINOR 0u /* bumped whenever a member is appended to either table */

#if defined(_WIN32)
#define MCPH_EXPORT __declspec(dllexport)
#else
#define MCPH_EXPORT __attribute__((visibility("default")))
#endif

/* ---- Status codes (canonical gRPC numbering; append-only) ---- */
typedef int32_t mcph_status;
#define MCPH_OK 0
#define MCPH_CANCELLED 1
#define MCPH_UNKNOWN 2
#define MCPH_INVALID_ARGUMENT 3
#define MCPH_DEADLINE_EXCEEDED 4
#define MCPH_NOT_FOUND 5
#define MCPH_PERMISSION_DENIED 7
#define MCPH_RESOURCE_EXHAUSTED 8
#define MCPH_FAILED_PRECONDITION 9 /* e.g. complete() called twice for one call */
#define MCPH_OUT_OF_RANGE 11       /* copy-out buffer too small; *len_out = bytes needed */
#define MCPH_UNIMPLEMENTED 12
#define MCPH_INTERNAL 13
#define MCPH_UNAVAILABLE 14
#define MCPH_UNAUTHENTICATED 16

/* ---- Log levels: RFC 5424 severities in MCP's order (debug is the least severe) ---- */
#define MCPH_LOG_DEBUG 0
#define MCPH_LOG_INFO 1
#define MCPH_LOG_NOTICE 2
#define MCPH_LOG_WARNING 3
#define MCPH_LOG_ERROR 4
#define MCPH_LOG_CRITICAL 5
#define MCPH_LOG_ALERT 6
#define MCPH_LOG_EMERGENCY 7

/* A byte view. OWNERSHIP: never owning; the parameter suffix says whose memory it is. */
typedef struct mcph_bytes {
  const char* ptr; /* may be NULL when len == 0 */
  size_t len;
} mcph_bytes;

typedef struct mcph_host_s* mcph_host;           /* host-owned; one per connector instance    */
typedef struct mcph_call_s* mcph_call;           /* host-owned; one per request, until complete */
typedef struct mcph_connector_s* mcph_connector; /* connector-owned instance state             */

/*
** Host services. OWNERSHIP: host-owned and immutable, valid from create() until destroy()
** returns. Every member is thread-safe. A member may be NULL only if it is appended after the
** minor the host was built with; check optional ones with MCPH_HOST_HAS.
*/
typedef struct mcph_host_api_v1 {
  uint32_t struct_size; /* sizeof(mcph_host_api_v1) as compiled into the host */
  uint32_t abi_minor;   /* the host's MCPH_ABI_MINOR */

  /* Operator log line (the host's log, tagged with the connector id; not sent to clients).
  ** Never log secrets. The host rate-limits and truncates. */
  void (*log)(mcph_host host, int32_t level, mcph_bytes message_in);

  /* Detail for the status the current create()/describe()/handle() is about to return. */
  void (*set_error)(mcph_host host, mcph_bytes message_in);

  /* Copy-out lookups. Returns MCPH_OK and writes *len_out bytes; MCPH_OUT_OF_RANGE with
  ** *len_out = bytes needed when cap is too small (buf may be NULL to probe);
  ** MCPH_NOT_FOUND when absent.
  ** config_get: key_in is a JSON pointer into this instance's validated config ("" = whole
  **   config, "/pool/size" = one value); the value is written as JSON text.
  ** secret_get: name_in must be declared in the manifest's "secrets" (else
  **   MCPH_PERMISSION_DENIED); the value is raw bytes. Wipe your copy after use. */
  mcph_status (*config_get)(mcph_host host, mcph_bytes key_in, char* buf, size_t cap, size_t* len_out);
  mcph_status (*secret_get)(mcph_host host, mcph_bytes name_in, char* buf, size_t cap, size_t* len_out);

  /* Instance-level change notification, any time after create(): method_in is one of
  ** "notifications/tools/list_changed", "notifications/prompts/list_changed",
  ** "notifications/resources/list_changed" (the host calls describe() again), or
  ** "notifications/resources/updated" with params_in {"uri": "..."} (JSON; may be empty). */
  mcph_status (*notify)(mcph_host host, mcph_bytes method_in, mcph_bytes params_in);

  /* ---- Per-call services: valid for c until complete(c) returns. ---- */

  /* Who is calling, as JSON: {"subject","authMethod","groups":[],"tenant","attributes":{}}.
  ** Act as this user downstream where the backend supports it. Copy-out like config_get. */
  mcph_status (*caller_get)(mcph_call c, char* buf, size_t cap, size_t* len_out);

  /* Milliseconds since the Unix epoch by which the call must complete; 0 = no deadline. The
  ** host cancels the call at the deadline and stops the worker if it does not complete. */
  int64_t (*deadline_ms)(mcph_call c);

  /* 1 when the client declared the capability ("elicitation", "sampling", "roots"). */
  int32_t (*client_supports)(mcph_call c, mcph_bytes capability_in);

  /* Progress for the client (notifications/progress); progress must increase per call;
  ** total < 0 means unknown; message_in may be empty. Dropped when the client asked for none. */
  mcph_status (*progress)(mcph_call c, double progress, double total, mcph_bytes message_in);

  /* A log message for the client (notifications/message), filtered by the level the client
  ** chose. logger_in may be empty; data_json_in is any JSON value. */
  mcph_status (*client_log)(mcph_call c, int32_t level, mcph_bytes logger_in, mcph_bytes data_json_in);

  /* Cancellation: a cheap poll (0 or 1), and a callback that runs at most once, on any
  ** thread, possibly before on_cancel returns (if the call is already cancelled). One
  ** callback per call: another on_cancel replaces it, and once it has run on_cancel returns
  ** MCPH_FAILED_PRECONDITION. No callback starts once complete(c) has begun, and complete(c)
  ** returns only after a running callback has returned (unless complete is called from inside
  ** it), so user may be freed as soon as complete(c) returns. */
  int32_t (*is_cancelled)(mcph_call c);
  mcph_status (*on_cancel)(mcph_call c, void (*fn)(void* user), void* user);

  /* Ends the client's response stream while the call goes on (a long call frees the client's
  ** connection; the client resumes with Last-Event-ID). A no-op where there is no stream. */
  mcph_status (*release_stream)(mcph_call c);

  /* Finish c exactly once, from any thread. result_in is JSON text:
  **   status == MCPH_OK: the MCP result object of the method (CallToolResult,
  **     ReadResourceResult, GetPromptResult, CompleteResult, {} for subscribe), or one of the
  **     two host-interpreted shapes below;
  **   status != MCPH_OK: a UTF-8 message for the client (not JSON).
  ** Input from the user (elicitation, sampling, roots) is requested by completing with
  **   {"resultType":"input_required",
  **    "inputRequests":{"<key>":{"method":"elicitation/create","params":{...}}, ...},
  **    "requestState": <any JSON, optional>}
  ** The host asks the client (a real server-to-client request on 2025 sessions, an
  ** input_required result on 2026-07-28) and calls handle() again with the same method and
  ** params plus "inputResponses": {"<key>": <the client's answer>} and "requestState": <your
  ** state, integrity-checked by the host>. Keep no per-call state of your own.
  ** Long work (tools/call only) may be handed to the host as a task with
  **   {"resultType":"deferred","taskRequired":false}
  ** The host then calls handle() again, at once or as a background task, with the same params
  ** and "_meta":{"io.mcphost/run":{"inTask":true|false}}; do the work in that call.
  ** Returns MCPH_FAILED_PRECONDITION (and changes nothing) on a second complete(). */
  mcph_status (*complete)(mcph_call c, mcph_status status, mcph_bytes result_in);

  /* ---- v1.1+ members are appended here; guard every use with MCPH_HOST_HAS ---- */
} mcph_host_api_v1;

/* True when the host's table has member m (it was built with a minor that has it). */
#define MCPH_HOST_HAS(api, m)                                                                 \
  ((api) != NULL && (api)->struct_size >= offsetof(mcph_host_api_v1, m) + sizeof((api)->m) && \
   (api)->m != NULL)

/* describe() and handle() may run concurrently on several threads. */
#define MCPH_CONNECTOR_CONCURRENT 0x1u

/*
** What the connector implements. OWNERSHIP: static storage in the library, valid until it is
** unloaded; the host never writes to it.
*/
typedef struct mcph_connector_api_v1 {
  uint32_t struct_size; /* sizeof(mcph_connector_api_v1) as compiled into the connector */
  uint32_t abi_major;   /* MCPH_ABI_MAJOR the connector was built against */
  uint32_t abi_minor;   /* MCPH_ABI_MINOR the connector was built against */
  uint32_t flags;       /* MCPH_CONNECTOR_* */
  const char* name;     /* static, NUL-terminated; must equal the manifest's "name" */
  const char* version;  /* static, NUL-terminated semantic version */

  /* Make an instance from its config (JSON text, already validated by the host against the
  ** manifest's configSchema). api and host stay valid until destroy(). On failure return
  ** non-OK with set_error(); *instance_out is then ignored. */
  mcph_status (*create)(const mcph_host_api_v1* api, mcph_host host, mcph_bytes config_json_in,
                        mcph_connector* instance_out);

  /* After every call has completed or been abandoned. May be NULL. */
  void (*destroy)(mcph_connector self);

  /* What the instance offers, as JSON:
  **   {"tools":[Tool...],"resources":[Resource...],"resourceTemplates":[ResourceTemplate...],
  **    "prompts":[Prompt...]}   (missing keys mean none; MCP shapes)
  ** *descriptor_out is connector-owned (see OWNERSHIP). */
  mcph_status (*describe)(mcph_connector self, mcph_bytes* descriptor_out);

  /* One request. method_in is "tools/call", "resources/read", "prompts/get",
  ** "completion/complete", "resources/subscribe" or "resources/unsubscribe"; params_in is its
  ** MCP params object as JSON (tools/call: {"name","arguments"}, with the connector's own
  ** names; see complete() for "inputResponses", "requestState" and "_meta").
  ** Return MCPH_OK to accept c, then complete(c) exactly once (now or later, from any
  ** thread). Return non-OK to refuse synchronously (after set_error); do not complete c then.
  ** params_in["_meta"]["io.mcphost/correlationId"] is the request's correlation id (the
  ** X-Request-Id the client sees): put it into your own logs to join them with the host's.
  ** Unknown methods: return MCPH_UNIMPLEMENTED. */
  mcph_status (*handle)(mcph_connector self, mcph_call c, mcph_bytes method_in, mcph_bytes params_in);

  /* Optional (may be NULL): cheap readiness probe; MCPH_UNAVAILABLE when the backend is down. */
  mcph_status (*check_health)(mcph_connector self);

  /* ---- v1.1+ members are appended here; the host checks struct_size before use ---- */
} mcph_connector_api_v1;

/*
** The one exported symbol. The host passes the ABI it speaks; return the table, or NULL when
** this connector cannot serve that host (e.g. it needs a newer minor). Must be cheap and free
** of side effects: no threads, no I/O (the connector is not configured yet).
*/
typedef const mcph_connector_api_v1* (*mcph_connector_entry_v1_fn)(uint32_t host_abi_major,
                                                                   uint32_t host_abi_minor);
#define MCPH_ENTRY_SYMBOL_V1 "mcph_connector_entry_v1"

MCPH_EXPORT const mcph_connector_api_v1* mcph_connector_entry_v1(uint32_t host_abi_major,
                                                                 uint32_t host_abi_minor);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MCPHOST_CONNECTOR_H */
