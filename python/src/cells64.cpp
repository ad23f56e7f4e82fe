#include "cells.hpp"
void snap::python::bindCells64(py::module_& module) { bindCells<double>(module); }
