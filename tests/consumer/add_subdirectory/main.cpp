// A GRU with one RTRL step, through the umbrella header of a snap added with add_subdirectory().

#include <snap/snap.hpp>

#include <iostream>

int main() {
  const snap::GRU<double> cell(3, 5, {.recurrentDensity = 0.5, .seed = 1});
  snap::RTRL<snap::GRU<double>> engine(cell);
  const snap::Vector<double>& state = engine.step(snap::Vector<double>::Ones(3));
  engine.accumulate(state);
  const bool ok = state.size() == 5 && state.allFinite() && engine.gradient().size() == cell.parameterCount() &&
                  engine.gradient().allFinite() && engine.gradient().norm() > 0;
  std::cout << "add_subdirectory consumer: " << (ok ? "ok" : "wrong result") << ", p = " << cell.parameterCount() << "\n";
  return ok ? 0 : 1;
}
