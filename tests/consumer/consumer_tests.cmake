# The programs every way in builds (find_package, add_subdirectory,
# FetchContent, the Conan test package), and what they must do when run.
# Include it after modelres::modelres exists; with MODELRES_CONSUMER_ONLINE,
# the online program is built and run too (it needs modelres::curl).
enable_testing()
set(_consumer_dir ${CMAKE_CURRENT_LIST_DIR})
set(_expect ${CMAKE_COMMAND} -P ${_consumer_dir}/expect.cmake)

# A cache laid out as the Python client (1.23-1.37, MODELSCOPE_CACHE) lays it out, and an empty one.
set(_cache ${CMAKE_CURRENT_BINARY_DIR}/cache)
file(WRITE ${_cache}/models/acme/tiny/config.json "{\"model_type\": \"tiny\"}\n")
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/empty-cache)

add_executable(resolve_offline ${_consumer_dir}/resolve_offline.cpp)
target_link_libraries(resolve_offline PRIVATE modelres::modelres)
add_test(NAME offline.cached_model_resolves
  COMMAND ${_expect} -DEXIT=0 "-DOUT=^${_cache}/models/acme/tiny\n$"
    -- env MODELSCOPE_CACHE=${_cache} $<TARGET_FILE:resolve_offline> acme/tiny)
add_test(NAME offline.missing_model_is_a_typed_miss
  COMMAND ${_expect} -DEXIT=1 "-DERR=^model not cached: acme/absent\n"
    -- env MODELSCOPE_CACHE=${CMAKE_CURRENT_BINARY_DIR}/empty-cache $<TARGET_FILE:resolve_offline> acme/absent)
add_test(NAME offline.links_no_network_code
  COMMAND ${CMAKE_COMMAND} -DBINARY=$<TARGET_FILE:resolve_offline>
    -P ${_consumer_dir}/../no_network/check_no_network.cmake)

if(MODELRES_CONSUMER_ONLINE)
  add_executable(resolve_online ${_consumer_dir}/resolve_online.cpp)
  target_link_libraries(resolve_online PRIVATE modelres::curl)
  # Port 9 on loopback refuses: the hub cannot be asked, so the cached copy is
  # served and said to be unchecked, and a model never cached is the hub's error.
  add_test(NAME online.unreachable_hub_serves_the_cache
    COMMAND ${_expect} -DEXIT=0 "-DOUT=^${_cache}/models/acme/tiny\n$" "-DERR=^hub not asked, cached copy served: "
      -- env MODELSCOPE_CACHE=${_cache} MODELSCOPE_ENDPOINT=http://127.0.0.1:9 $<TARGET_FILE:resolve_online> acme/tiny)
  add_test(NAME online.unreachable_hub_and_no_copy_is_a_typed_error
    COMMAND ${_expect} -DEXIT=1 "-DERR=^hub unreachable: acme/absent"
      -- env MODELSCOPE_CACHE=${CMAKE_CURRENT_BINARY_DIR}/empty-cache MODELSCOPE_ENDPOINT=http://127.0.0.1:9
         $<TARGET_FILE:resolve_online> acme/absent)
endif()
