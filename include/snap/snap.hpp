#pragma once
/// @file
/// snap: online training of sparse recurrent networks (RTRL, SnAp-n, UORO, BPTT).
/// The one header to include.

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"

#include "snap/io/checkpoint.hpp"
#include "snap/io/npz.hpp"
#include "snap/io/state.hpp"
#include "snap/io/weights.hpp"

#include "snap/pattern/kernels.hpp"
#include "snap/pattern/snap_pattern.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

#include "snap/cells/cell_base.hpp"
#include "snap/cells/cell_concept.hpp"
#include "snap/cells/gru.hpp"
#include "snap/cells/lstm.hpp"
#include "snap/cells/mask.hpp"
#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/rnn.hpp"
#include "snap/cells/structure.hpp"

#include "snap/engines/bptt.hpp"
#include "snap/engines/engine_concept.hpp"
#include "snap/engines/rtrl.hpp"
#include "snap/engines/snap.hpp"
#include "snap/engines/uoro.hpp"

#include "snap/train/optimizers.hpp"
#include "snap/train/readout.hpp"
#include "snap/train/trainer.hpp"

#include "snap/tasks/copy_task.hpp"
