#include "engines.hpp"
void snap::python::bindRTRL32(py::module_& module) { bindEngineFamily<RTRL, float>(module, "RTRL"); }
