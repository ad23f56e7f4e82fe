#include "engines.hpp"
void snap::python::bindBPTT64(py::module_& module) { bindEngineFamily<BPTT, double>(module, "BPTT"); }
