#include "engines.hpp"
void snap::python::bindBPTT32(py::module_& module) { bindEngineFamily<BPTT, float>(module, "BPTT"); }
