/* A connector built for a future ABI major: it exports only mcph_connector_entry_v2. */
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

EXPORT const void* mcph_connector_entry_v2(uint32_t major, uint32_t minor) {
  (void)major;
  (void)minor;
  return NULL;
}
