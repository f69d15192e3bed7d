# The examples in the docs are these compiled files, verbatim.
foreach(pair "README.md=tests/docs/readme_example.cpp" "docs/policies.md=tests/docs/user_policy_example.cpp"
             "docs/policies.md=tests/docs/hub_router_example.cpp"
             "docs/policies.md=tests/docs/layered_cache_example.cpp"
             "docs/getting-started.md=tests/consumer/resolve_offline.cpp"
             "docs/getting-started.md=tests/consumer/resolve_online.cpp"
             "docs/deployment.md=tests/docs/nginx_mirror.conf" "docs/deployment.md=tests/docs/nginx_hf_mirror.conf")
  string(REPLACE "=" ";" parts "${pair}")
  list(GET parts 0 doc)
  list(GET parts 1 example)
  file(READ "${SOURCE_DIR}/${doc}" doc_text)
  file(READ "${SOURCE_DIR}/${example}" example_text)
  string(FIND "${doc_text}" "${example_text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${doc} does not contain ${example} verbatim: update one from the other")
  endif()
endforeach()
