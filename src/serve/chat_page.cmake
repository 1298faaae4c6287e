# Embeds src/serve/chat.html into specsteer_serve as a string constant: the
# chat page is served from the binary, with no file, CDN or build step at run
# time. Editing the page re-runs CMake (configure dependency).
set(_specsteer_chat_page ${PROJECT_SOURCE_DIR}/src/serve/chat.html)
file(READ ${_specsteer_chat_page} SPECSTEER_CHAT_HTML)
if(SPECSTEER_CHAT_HTML MATCHES "\\)specsteer_html\"")
  message(FATAL_ERROR "src/serve/chat.html contains the raw-string delimiter )specsteer_html\"")
endif()
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_specsteer_chat_page})
configure_file(${CMAKE_CURRENT_LIST_DIR}/chat_page.h.in ${PROJECT_BINARY_DIR}/generated/serve/chat_page.h @ONLY)
target_include_directories(specsteer_serve PRIVATE ${PROJECT_BINARY_DIR}/generated)
