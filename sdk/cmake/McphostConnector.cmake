# McphostConnector.cmake -- mcphost_add_connector(): a connector library plus its manifest.
#
#   mcphost_add_connector(<target>
#                         MANIFEST <connector.json.in>
#                         [SOURCES <file>...] [<file>...]
#                         [OUTPUT_DIR <dir>]
#                         [SHARED]
#                         [INSTALL] [INSTALL_DESTINATION <dir>])
#
# Makes <target> a MODULE library (SHARED if asked) built with hidden symbol visibility and links
# it with mcphost::sdk. On Linux it also links with
#   - a version script that exports mcph_connector_entry_v* and nothing else (the C++ standard
#     library's templates are declared with default visibility, so -fvisibility=hidden alone
#     still exports hundreds of weak std:: symbols; MCPHOST_CONNECTOR_EXPORT_MAP=OFF drops it),
#   - --no-undefined: a missing symbol fails the build, not the worker's dlopen (skipped
#     automatically under -fsanitize, or MCPHOST_CONNECTOR_NO_UNDEFINED=OFF),
#   - --exclude-libs,ALL: static libraries linked in stay private.
#
# The manifest template is valid JSON with two placeholders that are filled in after every
# build, once the library exists:
#   @MCPH_LIBRARY@  the library's file name (e.g. libecho.so)
#   @MCPH_SHA256@   the SHA-256 of the built library, lowercase hex
# Any other @VAR@ is a CMake variable, substituted at configure time (e.g. @PROJECT_VERSION@).
# The library and <dir>/connector.json land together in the output directory, by default
# ${CMAKE_BINARY_DIR}/lib/mcphost/connectors/<manifest "name">: that folder is what gets
# installed on the host.
#
# INSTALL (or INSTALL_DESTINATION) adds install rules for both files, by default to
# lib/mcphost/connectors/<name> under the install prefix. They are installed as plain files,
# byte for byte: install(TARGETS) would strip or rewrite RPATHs and so break the sha256.
#
# The target gets the properties MCPHOST_CONNECTOR_NAME, MCPHOST_CONNECTOR_DIR and
# MCPHOST_CONNECTOR_MANIFEST (the generated connector.json), e.g. for a test that loads the
# built connector: $<TARGET_PROPERTY:echo,MCPHOST_CONNECTOR_DIR>.
#
# This file is used from the installed package (find_package(mcphost-sdk)) and in-tree (the
# mcphost build includes it from sdk/CMakeLists.txt). It is also the build-time script that
# writes the manifest (cmake -P, below), which is why it needs no other file.

# ------------------------------------------------------------------ build-time manifest writer
# cmake -DMCPH_WRITE_MANIFEST=ON -DMCPH_LIBRARY_FILE=... -DMCPH_TEMPLATE=... -DMCPH_OUTPUT=...
#       -P McphostConnector.cmake
if(CMAKE_SCRIPT_MODE_FILE AND MCPH_WRITE_MANIFEST)
  foreach(_var IN ITEMS MCPH_LIBRARY_FILE MCPH_TEMPLATE MCPH_OUTPUT)
    if(NOT DEFINED ${_var})
      message(FATAL_ERROR "McphostConnector.cmake: -D${_var}=... is required")
    endif()
  endforeach()
  if(NOT EXISTS "${MCPH_LIBRARY_FILE}")
    message(FATAL_ERROR "McphostConnector.cmake: no library at ${MCPH_LIBRARY_FILE}")
  endif()
  get_filename_component(_library "${MCPH_LIBRARY_FILE}" NAME)
  if(NOT _library MATCHES "^[A-Za-z0-9._+-]+$")
    # The name goes into a JSON string unescaped, and the host wants a plain file name.
    message(FATAL_ERROR "McphostConnector.cmake: library file name '${_library}' has characters "
                        "other than letters, digits and ._+-")
  endif()
  file(SHA256 "${MCPH_LIBRARY_FILE}" _sha256)
  file(READ "${MCPH_TEMPLATE}" _manifest)
  string(REPLACE "@MCPH_LIBRARY@" "${_library}" _manifest "${_manifest}")
  string(REPLACE "@MCPH_SHA256@" "${_sha256}" _manifest "${_manifest}")
  # Rewrite only on change, and atomically: a reader never sees half a manifest.
  set(_old "")
  if(EXISTS "${MCPH_OUTPUT}")
    file(READ "${MCPH_OUTPUT}" _old)
  endif()
  if(NOT _old STREQUAL _manifest)
    file(WRITE "${MCPH_OUTPUT}.tmp" "${_manifest}")
    file(RENAME "${MCPH_OUTPUT}.tmp" "${MCPH_OUTPUT}")
  endif()
  return()
endif()

# ------------------------------------------------------------------------- configure-time API
include_guard(GLOBAL)

if(CMAKE_VERSION VERSION_LESS 3.19)
  message(FATAL_ERROR "mcphost_add_connector needs CMake 3.19 or newer (it reads the manifest with string(JSON))")
endif()

option(MCPHOST_CONNECTOR_EXPORT_MAP "Export only the entry point from connectors (Linux version script)" ON)
option(MCPHOST_CONNECTOR_NO_UNDEFINED
       "Link connectors with --no-undefined on Linux (skipped automatically when -fsanitize is in use)" ON)

# Reads one member of the manifest template or stops with a message that names the file.
macro(_mcphost_manifest_get out text template)
  string(JSON ${out} ERROR_VARIABLE _mcphost_json_error GET "${${text}}" ${ARGN})
  if(_mcphost_json_error)
    string(REPLACE ";" "." _mcphost_member "${ARGN}")
    message(FATAL_ERROR "mcphost_add_connector: ${template}: \"${_mcphost_member}\": ${_mcphost_json_error}")
  endif()
endmacro()

function(mcphost_add_connector target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "SHARED;INSTALL" "MANIFEST;OUTPUT_DIR;INSTALL_DESTINATION" "SOURCES")
  if(arg_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "mcphost_add_connector(${target}): ${arg_KEYWORDS_MISSING_VALUES} needs a value")
  endif()
  if(NOT arg_MANIFEST)
    message(FATAL_ERROR "mcphost_add_connector(${target}): MANIFEST <connector.json.in> is required")
  endif()
  if(NOT TARGET mcphost::sdk)
    message(FATAL_ERROR "mcphost_add_connector(${target}): mcphost::sdk is not defined; "
                        "call find_package(mcphost-sdk REQUIRED) first")
  endif()
  get_filename_component(template "${arg_MANIFEST}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${template}")
    message(FATAL_ERROR "mcphost_add_connector(${target}): manifest template ${template} does not exist")
  endif()

  # Configure-time pass: every @VAR@ except the two build-time placeholders, which survive
  # because they are defined as themselves. configure_file also re-runs CMake when the
  # template changes.
  set(MCPH_LIBRARY "@MCPH_LIBRARY@")
  set(MCPH_SHA256 "@MCPH_SHA256@")
  set(configured "${CMAKE_CURRENT_BINARY_DIR}/${target}.connector.json.in")
  configure_file("${template}" "${configured}" @ONLY)
  file(READ "${configured}" text)

  # The host validates the whole manifest; catch the mistakes that would make this build
  # produce something it must refuse.
  _mcphost_manifest_get(manifest_version text "${template}" manifestVersion)
  if(NOT manifest_version EQUAL 1)
    message(FATAL_ERROR "mcphost_add_connector: ${template}: manifestVersion must be 1")
  endif()
  _mcphost_manifest_get(name text "${template}" name)
  # The host's rule, checked here so that the build fails rather than the install.
  string(LENGTH "${name}" name_length)
  if(NOT name MATCHES "^[a-z0-9][a-z0-9_-]*$" OR name_length GREATER 64)
    message(FATAL_ERROR "mcphost_add_connector: ${template}: name '${name}' must match "
                        "[a-z0-9][a-z0-9_-]{0,63} (it also names the connector's folder)")
  endif()
  _mcphost_manifest_get(version text "${template}" version)
  _mcphost_manifest_get(library text "${template}" library)
  _mcphost_manifest_get(sha256 text "${template}" sha256)
  if(NOT library STREQUAL "@MCPH_LIBRARY@" OR NOT sha256 STREQUAL "@MCPH_SHA256@")
    message(FATAL_ERROR "mcphost_add_connector: ${template}: \"library\" must be \"@MCPH_LIBRARY@\" and "
                        "\"sha256\" \"@MCPH_SHA256@\"; the build fills them in")
  endif()
  _mcphost_manifest_get(abi_major text "${template}" abi major)
  _mcphost_manifest_get(abi_min_minor text "${template}" abi minMinor)
  get_property(sdk_abi GLOBAL PROPERTY MCPHOST_SDK_ABI)  # "major;minor" of these headers
  if(sdk_abi)
    list(GET sdk_abi 0 sdk_major)
    list(GET sdk_abi 1 sdk_minor)
    if(NOT abi_major EQUAL sdk_major)
      message(FATAL_ERROR "mcphost_add_connector: ${template}: abi.major is ${abi_major}, this SDK is ABI ${sdk_major}")
    endif()
    if(abi_min_minor GREATER sdk_minor)
      message(FATAL_ERROR "mcphost_add_connector: ${template}: abi.minMinor ${abi_min_minor} is newer than "
                          "this SDK's ABI ${sdk_major}.${sdk_minor}")
    endif()
  endif()

  if(arg_OUTPUT_DIR)
    get_filename_component(output_dir "${arg_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  else()
    set(output_dir "${CMAKE_BINARY_DIR}/lib/mcphost/connectors/${name}")
  endif()
  # One folder holds one connector: two targets writing the same connector.json would race.
  get_property(used GLOBAL PROPERTY _MCPHOST_CONNECTOR_DIRS)
  if(output_dir IN_LIST used)
    message(FATAL_ERROR "mcphost_add_connector(${target}): ${output_dir} is already the output directory "
                        "of another connector (same manifest name?)")
  endif()
  set_property(GLOBAL APPEND PROPERTY _MCPHOST_CONNECTOR_DIRS "${output_dir}")

  set(type MODULE)
  if(arg_SHARED)
    set(type SHARED)
  endif()
  add_library(${target} ${type} ${arg_SOURCES} ${arg_UNPARSED_ARGUMENTS})
  target_link_libraries(${target} PRIVATE mcphost::sdk)
  # "$<0:>" keeps multi-config generators from appending a per-configuration subdirectory:
  # the library must sit next to its manifest.
  set_target_properties(${target} PROPERTIES
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${output_dir}$<0:>"
    RUNTIME_OUTPUT_DIRECTORY "${output_dir}$<0:>"
    LINK_DEPENDS "${configured}"  # a manifest edit relinks, which re-runs the POST_BUILD step
    MCPHOST_CONNECTOR_NAME "${name}"
    MCPHOST_CONNECTOR_DIR "${output_dir}"
    MCPHOST_CONNECTOR_MANIFEST "${output_dir}/connector.json")

  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    target_link_options(${target} PRIVATE "LINKER:--exclude-libs,ALL")
    if(MCPHOST_CONNECTOR_EXPORT_MAP)
      # The pattern covers a later mcph_connector_entry_v2 exported alongside v1. file(CONFIGURE)
      # writes only on change, so a re-configure does not relink.
      set(export_map "${CMAKE_CURRENT_BINARY_DIR}/${target}.exports.map")
      file(CONFIGURE OUTPUT "${export_map}" CONTENT "{\n  global: mcph_connector_entry_v*;\n  local: *;\n};\n")
      target_link_options(${target} PRIVATE "LINKER:--version-script=${export_map}")
      set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${export_map}")
    endif()
    # Sanitizer runtimes are linked into the executable, so a sanitized library has undefined
    # symbols by design.
    get_directory_property(dir_compile COMPILE_OPTIONS)
    get_directory_property(dir_link LINK_OPTIONS)
    string(TOUPPER "${CMAKE_BUILD_TYPE}" config)
    set(all_flags "${CMAKE_C_FLAGS} ${CMAKE_CXX_FLAGS} ${CMAKE_C_FLAGS_${config}} ${CMAKE_CXX_FLAGS_${config}} "
                  "${CMAKE_SHARED_LINKER_FLAGS} ${CMAKE_MODULE_LINKER_FLAGS} ${dir_compile} ${dir_link}")
    if(MCPHOST_CONNECTOR_NO_UNDEFINED AND NOT all_flags MATCHES "-fsanitize")
      target_link_options(${target} PRIVATE "LINKER:--no-undefined")
    endif()
  endif()

  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND "${CMAKE_COMMAND}" -DMCPH_WRITE_MANIFEST=ON
            "-DMCPH_LIBRARY_FILE=$<TARGET_FILE:${target}>"
            "-DMCPH_TEMPLATE=${configured}"
            "-DMCPH_OUTPUT=${output_dir}/connector.json"
            -P "${CMAKE_CURRENT_FUNCTION_LIST_FILE}"
    BYPRODUCTS "${output_dir}/connector.json"
    COMMENT "Writing ${name} ${version} manifest: ${output_dir}/connector.json"
    VERBATIM)

  if(arg_INSTALL OR arg_INSTALL_DESTINATION)
    set(destination "lib/mcphost/connectors/${name}")
    if(arg_INSTALL_DESTINATION)
      set(destination "${arg_INSTALL_DESTINATION}")
    endif()
    install(FILES "$<TARGET_FILE:${target}>" "${output_dir}/connector.json"
            DESTINATION "${destination}"
            PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
endfunction()
