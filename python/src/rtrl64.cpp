#include "engines.hpp"
void snap::python::bindRTRL64(py::module_& module) { bindEngineFamily<RTRL, double>(module, "RTRL"); }
