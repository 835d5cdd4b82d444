import json
import pickle

import pytest
import torch

from core.checkpoint import (META_KEY, load_model, pack, read_checkpoint, save_checkpoint, settle_checkpoints,
                             tensors_digest)
from core.config import TrainConfig
from core.datasets import DatasetInfo
from core.errors import CheckpointError
from core.models import build_model

INFO = DatasetInfo("digits", "image", tuple(map(str, range(10))), (1, 8, 8), (0.3,), (0.4,), "digits")


def saved(tmp_path, config=TrainConfig(dataset="digits")):
    model = build_model(config, INFO)
    save_checkpoint(tmp_path, model, {"config": config.to_dict(), "dataset": INFO.to_dict(), "epoch": 1})
    return model


def test_round_trip_gives_identical_outputs(tmp_path):
    model = saved(tmp_path)
    loaded, meta = load_model(tmp_path)
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(model.eval()(x), loaded(x))
    assert meta["epoch"] == 1 and meta["format_version"] == 2 and len(meta["file_sha256"]) == 64
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 1       # the readable copy


def test_settling_writes_the_readable_copy_from_the_file_and_skips_what_is_missing(tmp_path):
    config = TrainConfig(dataset="digits")
    save_checkpoint(tmp_path, build_model(config, INFO), {"config": config.to_dict(), "dataset": INFO.to_dict(),
                                                          "epoch": 7}, readable_copy=False, durable=False)
    assert not (tmp_path / "best.json").exists()
    settle_checkpoints(tmp_path, ["best", "last"])             # no last.safetensors: skipped
    _, meta = read_checkpoint(tmp_path)
    assert json.loads((tmp_path / "best.json").read_text()) == meta and meta["epoch"] == 7
    settle_checkpoints(tmp_path / "none", ["best"])            # a run that never saved: nothing to do
    assert not (tmp_path / "none").exists()


def test_settling_refuses_a_best_file_that_is_not_safetensors(tmp_path):
    (tmp_path / "best.safetensors").write_bytes(b"\xff" * 8)
    with pytest.raises(CheckpointError, match="header claims"):
        settle_checkpoints(tmp_path, ["best"])
    assert not (tmp_path / "best.json").exists()


def flip(path, position, old=None, new=None):
    blob = bytearray(path.read_bytes())
    if old is not None:
        position = blob.index(old)
        blob[position:position + len(old)] = new
    else:
        blob[position] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_flipped_byte_is_caught_by_checksum(tmp_path):
    saved(tmp_path)
    flip(tmp_path / "best.safetensors", -1)
    with pytest.raises(CheckpointError, match="corrupt: its contents do not match their recorded checksum"):
        load_model(tmp_path)


def test_a_changed_record_in_the_header_is_caught_too(tmp_path):
    saved(tmp_path)
    flip(tmp_path / "best.safetensors", None, b'\\"epoch\\": 1', b'\\"epoch\\": 7')   # still valid JSON
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path)


def test_the_checksum_is_the_sha256_of_the_file_with_its_own_field_zeroed(tmp_path):
    import hashlib

    saved(tmp_path)
    blob = (tmp_path / "best.safetensors").read_bytes()
    _, meta = read_checkpoint(tmp_path)
    zeroed = blob.replace(meta["file_sha256"].encode(), b"0" * 64)
    assert zeroed.count(b"0" * 64) == 1 and hashlib.sha256(zeroed).hexdigest() == meta["file_sha256"]


def format_1_file(tmp_path, model, config):
    """A checkpoint as format 1 wrote it: the record's checksum over the tensors, no file checksum."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    record = {"config": config.to_dict(), "dataset": INFO.to_dict(), "epoch": 3, "format_version": 1,
              "tensors_sha256": tensors_digest(state)}
    (tmp_path / "best.safetensors").write_bytes(pack(state, {META_KEY: json.dumps(record)}))


def test_format_1_checkpoints_still_load_and_their_checksum_is_still_checked(tmp_path):
    config = TrainConfig(dataset="digits")
    model = build_model(config, INFO)
    format_1_file(tmp_path, model, config)
    loaded, meta = load_model(tmp_path)
    x = torch.randn(2, 1, 8, 8)
    assert meta["epoch"] == 3 and torch.equal(model.eval()(x), loaded(x))
    flip(tmp_path / "best.safetensors", -1)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path)


def test_a_record_carried_over_from_another_checkpoint_gets_a_fresh_checksum(tmp_path):
    saved(tmp_path)
    _, meta = read_checkpoint(tmp_path)                          # holds the old file's digest
    config = TrainConfig(dataset="digits")
    save_checkpoint(tmp_path / "copy", build_model(config, INFO), {**meta, "tensors_sha256": "x"})
    _, again = read_checkpoint(tmp_path / "copy")
    assert again["file_sha256"] != meta["file_sha256"] and "tensors_sha256" not in again


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"garbage" * 10, pickle.dumps({"a": 1}),
                                     b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}"])
def test_malformed_files_are_refused(tmp_path, content):
    saved(tmp_path)
    (tmp_path / "best.safetensors").write_bytes(content)
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        read_checkpoint(tmp_path)


def test_safetensors_without_a_record_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "best.safetensors"))
    with pytest.raises(CheckpointError, match="holds no Torch Lab record"):
        read_checkpoint(tmp_path)


def test_wrong_architecture_lists_what_does_not_match(tmp_path):
    small = build_model(TrainConfig(dataset="digits", hidden=(32, 16)), INFO)
    claimed = TrainConfig(dataset="digits", hidden=(64,))
    save_checkpoint(tmp_path, small, {"config": claimed.to_dict(), "dataset": INFO.to_dict()})
    with pytest.raises(CheckpointError, match=r"unexpected \['5.bias', '5.weight'\]; wrong shapes \['1.weight \(32, 64\) != \(64, 64\)"):
        load_model(tmp_path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_model(tmp_path)


def test_pack_writes_what_safetensors_writes_for_every_dtype():
    from safetensors.torch import load, save

    generator = torch.Generator().manual_seed(0)
    state = {"weight": torch.randn(3, 4, generator=generator), "scalar": torch.tensor(2.5),
             "empty": torch.zeros(0, 5), "half": torch.randn(2, 2, generator=generator).to(torch.bfloat16),
             "mask": torch.tensor([True, False, True]), "index": torch.arange(5),
             "rng": torch.Generator().manual_seed(1).get_state()}
    blob = pack(state, {"record": "{}"})
    assert blob == save(state, metadata={"record": "{}"})
    back = load(blob)
    assert all(torch.equal(back[k], v) and back[k].dtype == v.dtype for k, v in state.items())
    assert tensors_digest(back) == tensors_digest(state)


def test_pack_refuses_a_tensor_it_cannot_hand_over_whole():
    with pytest.raises(ValueError, match="'view'.*contiguous"):
        pack({"view": torch.randn(4, 4).t()}, {})


def test_supervisor_start_removes_old_blob_leftovers_only(lab_home):
    import os
    import time

    from core.tracker import Store
    from core.worker import Supervisor

    store = Store()
    sha = store.put_blob(b"kept")
    folder = store.blob_path(sha).parent
    old, fresh = folder / f".{sha}.dead.tmp", folder / f".{'1' * 64}.live.tmp"
    old.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    Supervisor(slots=1, parent_pid=-1).serve()           # no parent: it tidies up, then returns at once
    assert not old.exists() and fresh.exists()
    assert store.read_blob(sha) == b"kept"


def test_a_read_that_caught_a_rewrite_in_the_middle_is_read_again(tmp_path, monkeypatch):
    """A reader slow enough to span two per-epoch writes reads the start of one version and the end
    of the next; the checksum refuses the mix and the file is read anew."""
    from pathlib import Path

    from core.epochfile import EpochFile

    file = EpochFile(tmp_path / "best.safetensors", {"config": {}, "dataset": {}})
    old = file.write({"w": torch.zeros(1000)}, {"epoch": 1}).read_bytes()
    new = file.write({"w": torch.ones(1000)}, {"epoch": 2}).read_bytes()
    assert len(old) == len(new)
    reads, real = [], Path.read_bytes

    def read_bytes(path):
        reads.append(path.name)
        return old[:len(old) // 2] + new[len(old) // 2:] if len(reads) == 1 else real(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    state, meta = read_checkpoint(tmp_path)
    assert meta["epoch"] == 2 and torch.equal(state["w"], torch.ones(1000)) and len(reads) == 2
    monkeypatch.setattr(Path, "read_bytes", lambda path: reads.append(path.name) or old[:-1] + bytes([old[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="corrupt"):                 # a damaged file: refused after 3 reads
        read_checkpoint(tmp_path)
    assert len(reads) == 5
