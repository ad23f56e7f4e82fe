// The extension module snap._snap: snap's exceptions as Python exceptions, then the bindings
// of each translation unit (docs/python.md).

#include "common.hpp"

namespace snap::python {

namespace {

/// The Python classes of snap's exceptions, created once when the module is imported.
struct ErrorClasses {
  PyObject* error = nullptr;
  PyObject* shape = nullptr;
  PyObject* value = nullptr;
  PyObject* usage = nullptr;
  PyObject* nonFinite = nullptr;
  PyObject* format = nullptr;
};
ErrorClasses errorClasses;

/// A new exception class snap.<name> with `bases` (a class or a tuple of classes), added to `module`.
PyObject* addError(py::module_& module, const char* name, py::object bases, const char* doc) {
  const std::string qualified = std::string("snap.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  module.add_object(name, py::handle(type));  // the module keeps the class alive
  return type;
}

}  // namespace

void bindErrors(py::module_& module) {
  const py::object valueError = py::reinterpret_borrow<py::object>(PyExc_ValueError);
  const py::object runtimeError = py::reinterpret_borrow<py::object>(PyExc_RuntimeError);
  ErrorClasses& c = errorClasses;
  c.error = addError(module, "Error", py::reinterpret_borrow<py::object>(PyExc_Exception),
                     "Base of every exception snap raises (C++ snap::Error).");
  const py::object error = py::reinterpret_borrow<py::object>(c.error);
  c.shape = addError(module, "ShapeError", py::make_tuple(error, valueError),
                     "A size or shape does not match (C++ snap::ShapeError).");
  c.value = addError(module, "ValueError", py::make_tuple(error, valueError),
                     "A value is out of its domain (C++ snap::ValueError).");
  c.usage = addError(module, "UsageError", py::make_tuple(error, runtimeError),
                     "A call made in the wrong order (C++ snap::UsageError).");
  c.nonFinite = addError(module, "NonFiniteError", py::make_tuple(error, valueError),
                         "A NaN or an infinity where values enter (C++ snap::NonFiniteError).");
  c.format = addError(module, "FormatError", py::make_tuple(error, valueError),
                      "A file that cannot be read, written or understood (C++ snap::FormatError).");
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const FormatError& e) {
      PyErr_SetString(errorClasses.format, e.what());
    } catch (const ShapeError& e) {
      PyErr_SetString(errorClasses.shape, e.what());
    } catch (const ValueError& e) {
      PyErr_SetString(errorClasses.value, e.what());
    } catch (const UsageError& e) {
      PyErr_SetString(errorClasses.usage, e.what());
    } catch (const NonFiniteError& e) {
      PyErr_SetString(errorClasses.nonFinite, e.what());
    } catch (const Error& e) {
      PyErr_SetString(errorClasses.error, e.what());
    }
  });
}

}  // namespace snap::python

PYBIND11_MODULE(_snap, module) {
  using namespace snap::python;
  module.doc() = "snap: online training of sparse recurrent networks (RTRL, SnAp-n, UORO, BPTT), from C++ headers";
  bindErrors(module);
  bindBasics(module);
  bindCells32(module);
  bindCells64(module);
  bindRTRL32(module);
  bindRTRL64(module);
  bindSnAp32(module);
  bindSnAp64(module);
  bindUORO32(module);
  bindUORO64(module);
  bindBPTT32(module);
  bindBPTT64(module);
}
