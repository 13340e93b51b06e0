/* A shared library that is not a connector: it exports no entry symbol at all. */
#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

EXPORT int some_unrelated_function(void) {
  return 42;
}
