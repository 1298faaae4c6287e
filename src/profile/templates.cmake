# Embeds data/templates.json into specsteer_profile as a string constant, so the
# binary needs no data file at run time and C++ and Python share one table.
# Editing the JSON re-runs CMake (configure dependency) and rebuilds the module.
set(_specsteer_templates ${PROJECT_SOURCE_DIR}/data/templates.json)
file(READ ${_specsteer_templates} SPECSTEER_TEMPLATES_JSON)
if(SPECSTEER_TEMPLATES_JSON MATCHES "\\)specsteer_json\"")
  message(FATAL_ERROR "data/templates.json contains the raw-string delimiter )specsteer_json\"")
endif()
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_specsteer_templates})
configure_file(${CMAKE_CURRENT_LIST_DIR}/templates_json.h.in
  ${PROJECT_BINARY_DIR}/generated/profile/templates_json.h @ONLY)
target_include_directories(specsteer_profile PRIVATE ${PROJECT_BINARY_DIR}/generated)
