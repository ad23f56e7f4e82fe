#include "engines.hpp"
void snap::python::bindSnAp64(py::module_& module) { bindEngineFamily<SnAp, double>(module, "SnAp"); }
