"""The code of docs/python.md, run (the page's block is this region, verbatim: ctest's
test_python_docs_snippets checks it)."""


def test_quickstart_of_docs_python_md(capsys):
    # snippet-begin: quickstart
    import numpy as np
    import snap

    task = snap.CopyTask(seed=1)
    cell = snap.GRU(task.input_size, 32, recurrent_density=0.25, mask_sharing="shared", seed=1, dtype="float32")
    readout = snap.Readout(32, task.output_size, 2, dtype="float32")
    trainer = snap.Trainer(cell, readout, snap.Adam(0.01), snap.SnApOptions(n=2), clip_norm=1.0)
    while task.data_time < 60000:
        sequence = task.next()
        losses = trainer.run(sequence.inputs("float32")[:, None, :], sequence.targets()[:, None], end_sequence=True)
        task.record(sequence, float(losses.sum()) / np.log(2))
    print(task.length)  # the curriculum length L reached (6 on the test machine)
    # snippet-end: quickstart
    # A network that learned nothing scores 1 bit per recall step and stays at L = 1.
    assert int(capsys.readouterr().out) >= 5
