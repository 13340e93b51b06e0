/* A connector whose create() fails: the host must report the reason and keep serving. */
#include <string.h>

#include "mcphost/connector.h"

static mcph_status create(const mcph_host_api_v1* api, mcph_host host, mcph_bytes config,
                          mcph_connector* out) {
  static const char msg[] = "cannot reach the backend at db.invalid:5432 (test connector)";
  (void)config;
  (void)out;
  api->set_error(host, (mcph_bytes){msg, sizeof msg - 1});
  return MCPH_UNAVAILABLE;
}
static mcph_status describe(mcph_connector self, mcph_bytes* out) {
  (void)self;
  out->ptr = "{}";
  out->len = 2;
  return MCPH_OK;
}
static mcph_status handle(mcph_connector self, mcph_call c, mcph_bytes m, mcph_bytes p) {
  (void)self, (void)c, (void)m, (void)p;
  return MCPH_UNIMPLEMENTED;
}
static const mcph_connector_api_v1 kApi = {sizeof(mcph_connector_api_v1),
                                           MCPH_ABI_MAJOR,
                                           MCPH_ABI_MINOR,
                                           0,
                                           "create_fails",
                                           "1.0.0",
                                           create,
                                           NULL,
                                           describe,
                                           handle,
                                           NULL};
MCPH_EXPORT const mcph_connector_api_v1* mcph_connector_entry_v1(uint32_t major, uint32_t minor) {
  (void)minor;
  return major == MCPH_ABI_MAJOR ? &kApi : NULL;
}
