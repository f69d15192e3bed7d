#!/usr/bin/env python3
"""Checks the package recipes without vcpkg or Conan, against the installed CMake package.

    check_recipes.py SOURCE_DIR STAGE_DIR

- version: include/modelres/version.hpp is the one source; vcpkg.json (both), the Conan recipe's
  set_version, CHANGELOG.md, the installed CMake package and the .pc files must all say it.
- vcpkg: both manifests are well-formed and carry the fields vcpkg requires; the port's features
  map onto CMake options that exist; the portfile uses the current helpers, not the deprecated ones.
- Conan: conanfile.py and test_package/conanfile.py parse (ast); the recipe is then run against
  stand-ins for Conan's API, for every option combination, and its components' CMake targets and
  pkg-config names must be exactly the installed package's.
"""
import ast
import json
import re
import sys
import types
from pathlib import Path

source, stage = Path(sys.argv[1]), Path(sys.argv[2])
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


version = re.search(r'#define MODELRES_VERSION_STRING "([^"]+)"',
                    (source / "include/modelres/version.hpp").read_text()).group(1)

# --- vcpkg -------------------------------------------------------------------------------------
VERSION_FIELDS = ("version", "version-semver", "version-date", "version-string")
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def manifest(path):
    data = json.loads(path.read_text())  # raises on malformed JSON: the test fails loudly
    check(NAME.match(data.get("name", "")), f"{path}: name must be lowercase words joined by '-'")
    fields = [f for f in VERSION_FIELDS if f in data]
    check(len(fields) == 1, f"{path}: exactly one of {VERSION_FIELDS}, found {fields}")
    check(fields and data[fields[0]] == version, f"{path}: version {fields and data[fields[0]]} != version.hpp {version}")
    check(isinstance(data.get("description"), str) and data["description"], f"{path}: no description")
    check(data.get("license") == "MIT", f"{path}: license must be the SPDX id MIT")
    return data


def dependency_names(deps):
    return [d if isinstance(d, str) else d["name"] for d in deps]


port = manifest(source / "ports/modelres/vcpkg.json")
top = manifest(source / "vcpkg.json")
check(port["name"] == top["name"] == "modelres", "vcpkg: both manifests must name modelres")
hosts = {d["name"] for d in port["dependencies"] if isinstance(d, dict) and d.get("host")}
check({"vcpkg-cmake", "vcpkg-cmake-config"} <= hosts, "port: vcpkg-cmake and vcpkg-cmake-config must be host dependencies")
check("boost-outcome" in dependency_names(port["dependencies"]), "port: boost-outcome is the core's dependency")
features = port.get("features", {})
check(set(features) == {"online", "curl", "tools"}, f"port: features must be online, curl, tools: {sorted(features)}")
for name, feature in features.items():
    check(feature.get("description"), f"port: feature {name} has no description")
    for dep in feature.get("dependencies", []):
        if isinstance(dep, dict) and dep["name"] == "modelres":
            check(set(dep.get("features", [])) <= set(features), f"port: feature {name} asks for an unknown feature")
            check(dep.get("default-features") is False, f"port: feature {name}'s self-dependency must not pull defaults")
implied = {n: {f for d in f_.get("dependencies", []) if isinstance(d, dict) and d["name"] == "modelres"
               for f in d.get("features", [])} for n, f_ in features.items()}
check(implied.get("curl") == {"online"} and implied.get("tools") == {"curl"}, f"port: curl needs online, tools needs curl: {implied}")
check(set(port.get("default-features", [])) <= set(features), "port: default-features names an unknown feature")

portfile = (source / "ports/modelres/portfile.cmake").read_text()
for required in ("vcpkg_cmake_configure(", "vcpkg_cmake_install(", "vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/modelres)",
                 "vcpkg_fixup_pkgconfig(", "vcpkg_install_copyright(", "set(VCPKG_BUILD_TYPE release)",
                 "-DMODELRES_BUILD_TESTS=OFF", "-DMODELRES_BUILD_BENCHMARKS=OFF", "-DMODELRES_BUILD_DEMO=OFF"):
    check(required in portfile, f"portfile.cmake: missing {required}")
for deprecated in ("vcpkg_configure_cmake", "vcpkg_install_cmake", "vcpkg_fixup_cmake_targets", "vcpkg_copy_tool_dependencies"):
    check(deprecated not in portfile, f"portfile.cmake: uses deprecated {deprecated}")
mapping = dict(re.findall(r"^\s+(online|curl|tools)\s+(MODELRES_\w+)$", portfile, re.M))
check(set(mapping) == set(features), f"portfile.cmake: vcpkg_check_features must map every feature: {mapping}")
cmake_options = set(re.findall(r"(?:option|cmake_dependent_option)\((MODELRES_\w+)", (source / "CMakeLists.txt").read_text()))
for feature, option in mapping.items():
    check(option in cmake_options, f"portfile.cmake: feature {feature} maps to {option}, which CMakeLists.txt does not define")

# --- the installed CMake package and .pc files ------------------------------------------------
config_dir = stage / "share/cmake/modelres"
installed_targets = set()
for targets_file in config_dir.glob("modelres*Targets.cmake"):
    installed_targets |= set(re.findall(r"add_library\((modelres::\w+) INTERFACE IMPORTED\)", targets_file.read_text()))
check(installed_targets == {"modelres::modelres", "modelres::online", "modelres::curl"},
      f"installed package: unexpected targets {sorted(installed_targets)}")
config_version = re.search(r'set\(PACKAGE_VERSION "([^"]+)"\)', (config_dir / "modelresConfigVersion.cmake").read_text())
check(config_version and config_version.group(1) == version, "installed package: modelresConfigVersion.cmake drifts from version.hpp")
installed_pc = {}
for pc in (stage / "share/pkgconfig").glob("*.pc"):
    installed_pc[pc.stem] = re.search(r"^Version: (.*)$", pc.read_text(), re.M).group(1)
check(set(installed_pc) == {"modelres", "modelres-online", "modelres-curl"}, f"installed .pc files: {sorted(installed_pc)}")
for name, pc_version in installed_pc.items():
    check(pc_version == version, f"{name}.pc: Version {pc_version} != version.hpp {version}")
usage = (source / "ports/modelres/usage").read_text()
for target in installed_targets:
    check(target in usage, f"ports/modelres/usage does not show {target}")
check("find_package(modelres CONFIG REQUIRED)" in usage, "ports/modelres/usage: no find_package(modelres CONFIG REQUIRED)")

# --- Conan ---------------------------------------------------------------------------------------
recipe_path = source / "conanfile.py"
recipe_source = recipe_path.read_text()
tree = ast.parse(recipe_source)
ast.parse((source / "test_package/conanfile.py").read_text())
test_package = (source / "test_package/conanfile.py").read_text()
check('test_type = "explicit"' in test_package and "self.tested_reference_str" in test_package,
      "test_package/conanfile.py: an explicit test that requires the tested reference")
classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
check(len(classes) == 1, "conanfile.py: exactly one recipe class")
attributes = {t.id: ast.literal_eval(n.value) for n in classes[0].body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, (ast.Constant, ast.Dict, ast.Tuple, ast.List))}
check(attributes.get("name") == "modelres", "conanfile.py: name")
check(attributes.get("package_type") == "header-library", "conanfile.py: package_type must be header-library")
check(set(attributes.get("options", {})) == {"online", "curl"}, "conanfile.py: options must be online and curl")
check("version" not in attributes, "conanfile.py: the version comes from set_version(), not a literal")


class ConanInvalidConfiguration(Exception):
    pass


def stand_ins():
    """Just enough of Conan's API for the recipe's own methods to run."""
    modules = {name: types.ModuleType(name) for name in
               ("conan", "conan.errors", "conan.tools", "conan.tools.build", "conan.tools.files", "conan.tools.layout")}
    modules["conan"].ConanFile = object
    modules["conan.errors"].ConanInvalidConfiguration = ConanInvalidConfiguration
    modules["conan.tools.build"].check_min_cppstd = lambda conanfile, cppstd: None
    modules["conan.tools.files"].load = lambda conanfile, path: Path(path).read_text()
    modules["conan.tools.files"].copy = lambda *args, **kwargs: None
    modules["conan.tools.layout"].basic_layout = lambda *args, **kwargs: None
    return modules


class Component:
    def __init__(self):
        self.properties, self.requires, self.components = {}, [], {}

    def set_property(self, key, value):
        self.properties[key] = value


class Components(dict):
    def __missing__(self, key):
        self[key] = Component()
        return self[key]


class Settings:
    os = "Linux"

    def get_safe(self, key):
        return None


sys.modules.update(stand_ins())
namespace = {}
exec(compile(recipe_source, str(recipe_path), "exec"), namespace)
Recipe = next(v for v in namespace.values() if isinstance(v, type) and getattr(v, "name", None) == "modelres")

recipe = Recipe()
recipe.recipe_folder = str(source)
recipe.set_version()
check(recipe.version == version, f"conanfile.py: set_version() gives {recipe.version}, version.hpp says {version}")

expected_pc = {"modelres::modelres": "modelres", "modelres::online": "modelres-online", "modelres::curl": "modelres-curl"}
for online in (True, False):
    for curl in (True, False):
        recipe = Recipe()
        recipe.options = types.SimpleNamespace(online=online, curl=curl)
        recipe.settings = Settings()
        try:
            recipe.validate()
        except ConanInvalidConfiguration:
            check(curl and not online, f"conanfile.py: online={online} curl={curl} refused")
            continue
        check(not (curl and not online), "conanfile.py: curl without online must be refused")
        required = []
        recipe.requires = lambda ref, **kwargs: required.append(ref.split("/")[0])
        recipe.requirements()
        expected = ["boost"] + (["nlohmann_json", "openssl"] if online else []) + (["libcurl"] if curl else [])
        check(required == expected, f"conanfile.py: online={online} curl={curl} requires {required}, expected {expected}")

        recipe.cpp_info = Component()
        recipe.cpp_info.components = Components()
        recipe.package_info()
        check(recipe.cpp_info.properties.get("cmake_file_name") == "modelres", "conanfile.py: cmake_file_name must be modelres")
        check(recipe.cpp_info.properties.get("cmake_target_name") not in installed_targets,
              "conanfile.py: the aggregate target must not take a component's name")
        components = recipe.cpp_info.components
        targets = {c.properties.get("cmake_target_name"): name for name, c in components.items()}
        wanted = {"modelres::modelres"} | ({"modelres::online"} if online else set()) | ({"modelres::curl"} if curl else set())
        check(set(targets) == wanted, f"conanfile.py: online={online} curl={curl} gives targets {sorted(targets)}, expected {sorted(wanted)}")
        if online and curl:
            check(set(targets) == installed_targets, "conanfile.py: targets differ from the installed CMake package's")
        for target, name in targets.items():
            check(components[name].properties.get("pkg_config_name") == expected_pc.get(target),
                  f"conanfile.py: {target}'s pkg_config_name differs from the installed .pc file's")
            for req in components[name].requires:
                if "::" not in req:
                    check(req in components, f"conanfile.py: component {name} requires unknown component {req}")
                else:
                    check(req.split("::")[0] in required, f"conanfile.py: component {name} requires {req}, not a requirement")

# --- CHANGELOG --------------------------------------------------------------------------------
headings = re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?", (source / "CHANGELOG.md").read_text(), re.M)
check(headings and headings[0] == version, f"CHANGELOG.md: newest entry {headings[:1]} is not version.hpp's {version}")

for failure in failures:
    print("FAIL:", failure)
if failures:
    sys.exit(1)
print(f"recipes consistent: vcpkg port and manifest, Conan recipe, CMake package, .pc files, CHANGELOG all at {version}")
