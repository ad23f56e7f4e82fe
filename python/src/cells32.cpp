#include "cells.hpp"
void snap::python::bindCells32(py::module_& module) { bindCells<float>(module); }
