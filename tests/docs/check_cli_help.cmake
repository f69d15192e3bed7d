# docs/cli.md shows what `modelres [COMMAND] --help` prints, verbatim.
cmake_minimum_required(VERSION 3.14)
get_filename_component(cli_dir ${CLI} DIRECTORY)
file(READ ${SOURCE_DIR}/docs/cli.md doc)
foreach(command "" resolve download verify lock ls)
  # Run as `modelres` from PATH, so that the usage line names the program as users type it.
  execute_process(COMMAND env "PATH=${cli_dir}:$ENV{PATH}" modelres ${command} --help
    OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "modelres ${command} --help exited ${rc}")
  endif()
  string(FIND "${doc}" "${help}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "docs/cli.md does not show `modelres ${command} --help` verbatim; it prints:\n${help}")
  endif()
endforeach()
