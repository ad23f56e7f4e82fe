"""Opens a snap checkpoint with numpy.load and checks it as docs/reliability.md describes:
the format and version arrays, and the CRC-32 checksum over the other arrays in name order."""

import sys
import zlib

import numpy as np


def checksum(archive):
    crc = 0
    for name in sorted(archive.files):
        if name == "checksum":
            continue
        a = archive[name]
        crc = zlib.crc32(name.encode() + b"\0" + a.dtype.str.encode() + b"\0" +
                         np.array(a.shape, "<i8").tobytes() + a.tobytes(), crc)
    return crc


def main(path):
    archive = np.load(path)
    assert bytes(archive["format"]).decode() == "snap checkpoint", "format"
    assert int(archive["version"]) == 4, "version"
    assert bytes(archive["trainer/cell/cell"]).decode() in ("rnn", "gru", "lstm"), "cell type"
    assert int(archive["checksum"]) == checksum(archive), "checksum"
    cell = "trainer/cell/"
    hidden = archive[cell + "weight_hh"].shape[1]
    assert archive[cell + "weight_ih"].shape[0] == archive[cell + "gates"] * hidden
    assert ((archive[cell + "weight_hh"] != 0) <= (archive[cell + "mask_hh"] == 1)).all(), "masked weights"
    assert bytes(archive["trainer/engine/engine"]).decode() == "SnAp"
    print(f"{path}: {len(archive.files)} arrays, checksum {int(archive['checksum']):#010x} verified")
    for name in sorted(archive.files)[:12]:
        print(f"  {name:40s} {archive[name].dtype.str:4s} {archive[name].shape}")


if __name__ == "__main__":
    main(sys.argv[1])
