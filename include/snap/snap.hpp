#pragma once
/// @file
/// snap: online training of sparse recurrent networks (RTRL, SnAp-n, UORO, BPTT, e-prop,
/// RFLO, rolling BPTT) for single cells and stacks of layers.
/// The one header to include.

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"

#include "snap/archive/arrays.hpp"
#include "snap/archive/npz.hpp"

#include "snap/pattern/kernels.hpp"
#include "snap/pattern/snap_pattern.hpp"
#include "snap/pattern/sparse_products.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

#include "snap/cells/cell_archive.hpp"
#include "snap/cells/cell_base.hpp"
#include "snap/cells/cell_concept.hpp"
#include "snap/cells/gru.hpp"
#include "snap/cells/layer.hpp"
#include "snap/cells/lru.hpp"
#include "snap/cells/lstm.hpp"
#include "snap/cells/mask.hpp"
#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/rnn.hpp"
#include "snap/cells/stack.hpp"
#include "snap/cells/structure.hpp"

#include "snap/engines/bptt.hpp"
#include "snap/engines/engine_concept.hpp"
#include "snap/engines/eprop.hpp"
#include "snap/engines/rolling_bptt.hpp"
#include "snap/engines/rtrl.hpp"
#include "snap/engines/snap.hpp"
#include "snap/engines/uoro.hpp"

#include "snap/train/optimizers.hpp"
#include "snap/train/readout.hpp"
#include "snap/train/readout_concept.hpp"
#include "snap/train/regression_readout.hpp"
#include "snap/train/trainer.hpp"

#include "snap/tasks/adding_task.hpp"
#include "snap/tasks/copy_task.hpp"

#include "snap/io/checkpoint.hpp"
#include "snap/io/weights.hpp"
