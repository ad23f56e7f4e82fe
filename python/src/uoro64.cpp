#include "engines.hpp"
void snap::python::bindUORO64(py::module_& module) { bindEngineFamily<UORO, double>(module, "UORO"); }
