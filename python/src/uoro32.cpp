#include "engines.hpp"
void snap::python::bindUORO32(py::module_& module) { bindEngineFamily<UORO, float>(module, "UORO"); }
