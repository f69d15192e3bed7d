# An overlay port that builds the checkout it sits in:
#   vcpkg install modelres --overlay-ports=<checkout>/ports
# For a curated registry, SOURCE_PATH comes from vcpkg_from_github (REF "v${VERSION}", its SHA512)
# instead; everything below stays the same.
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

# Header-only: one configuration, no debug tree (the tools feature's program is release-only too).
set(VCPKG_BUILD_TYPE release)

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        online MODELRES_WITH_ONLINE
        curl   MODELRES_WITH_CURL
        tools  MODELRES_BUILD_TOOLS
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        -DMODELRES_INSTALL=ON
        -DMODELRES_BUILD_TESTS=OFF
        -DMODELRES_BUILD_BENCHMARKS=OFF
        -DMODELRES_BUILD_DEMO=OFF
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/modelres)
vcpkg_fixup_pkgconfig()

if("tools" IN_LIST FEATURES)
    vcpkg_copy_tools(TOOL_NAMES modelres modelres-online AUTO_CLEAN)
endif()

# The licence and the program's page go where vcpkg puts them, not where a system install does.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/licenses" "${CURRENT_PACKAGES_DIR}/share/doc")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
