#include "engines.hpp"
void snap::python::bindSnAp32(py::module_& module) { bindEngineFamily<SnAp, float>(module, "SnAp"); }
