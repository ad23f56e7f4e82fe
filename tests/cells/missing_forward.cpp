// Must not compile: a cell derived from snap::CellBase without forward(). The engine's
// static_assert must say so in a sentence that names forward (tests/CMakeLists.txt checks it).

#include <snap/cells/cell_base.hpp>
#include <snap/engines/rtrl.hpp>

namespace {

/// Everything of a cell but its forward step.
class MissingForward : public snap::CellBase<double> {
public:
  MissingForward() : snap::CellBase<double>(2, 3, {.gates = 1, .unitStates = 1, .reach = {1}, .direct = {0}}, {}) {}
};

}  // namespace

int main() {
  const MissingForward cell;
  snap::RTRL<MissingForward> engine(cell);
  return static_cast<int>(engine.steps());
}
