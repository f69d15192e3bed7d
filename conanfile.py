# Conan 2 recipe for modelres, a header-only library. Its components and
# targets are the CMake package's: modelres::modelres (Boost alone),
# modelres::online (+ nlohmann_json, OpenSSL), modelres::curl (+ libcurl).
#   conan create . -o "modelres/*:curl=False"   # online without CurlTransport
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class ModelresConan(ConanFile):
    name = "modelres"
    description = ("Turns a model reference (ModelScope id or path) into a verified local directory, "
                   "offline from the caches the Python clients write or online with verified downloads.")
    license = "MIT"
    topics = ("modelscope", "model-hub", "cache", "download", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "online": [True, False],
        "curl": [True, False],
    }
    default_options = {
        "online": True,
        "curl": True,
    }
    exports_sources = "include/*", "LICENSE"
    no_copy_source = True

    def set_version(self):
        # The one place the version is written.
        header = load(self, os.path.join(self.recipe_folder, "include", "modelres", "version.hpp"))
        self.version = re.search(r'#define MODELRES_VERSION_STRING "([^"]+)"', header).group(1)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # A header-library's requirements are transitive_headers and transitive_libs by default.
        self.requires("boost/[>=1.74 <2]")
        if self.options.online:
            self.requires("nlohmann_json/[>=3.11 <4]")
            self.requires("openssl/[>=1.1 <4]")
        if self.options.curl:
            self.requires("libcurl/[>=7.62 <9]")

    def package_id(self):
        self.info.clear()

    def validate(self):
        if self.options.curl and not self.options.online:
            raise ConanInvalidConfiguration("modelres: the curl option needs online=True (CurlTransport is an online part)")
        if self.settings.os == "Windows":
            raise ConanInvalidConfiguration("modelres: POSIX only for now (flock, fnmatch, O_NOFOLLOW)")
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 17)

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "modelres")
        # The aggregate of every component, under a name the CMake package does not use:
        # modelres::modelres is the offline core alone, as in find_package(modelres).
        self.cpp_info.set_property("cmake_target_name", "modelres::all")
        self.cpp_info.set_property("pkg_config_name", "modelres-all")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []

        self._component("core", "modelres::modelres", "modelres", ["boost::headers"])
        if self.options.online:
            self._component("online", "modelres::online", "modelres-online",
                            ["core", "nlohmann_json::nlohmann_json", "openssl::crypto"])
        if self.options.curl:
            self._component("curl", "modelres::curl", "modelres-curl", ["online", "libcurl::curl"])

    def _component(self, name, cmake_target, pkg_config_name, requires):
        component = self.cpp_info.components[name]
        component.set_property("cmake_target_name", cmake_target)
        component.set_property("pkg_config_name", pkg_config_name)
        component.requires = requires
        component.bindirs = []
        component.libdirs = []
