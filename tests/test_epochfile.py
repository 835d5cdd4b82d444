"""The per-epoch checkpoint writer: the file `save_checkpoint` writes, at a lower cost per epoch."""

import json
import os
import time

import pytest
import torch
from safetensors.torch import load as load_safetensors

from core.checkpoint import DIGEST_KEY, META_KEY, read_checkpoint, read_header, record_json
from core.epochfile import DTYPES, EpochFile
from core.errors import CheckpointError
from core.resume import optimizer_parts
from core.writer import Writer, can_fork

FIXED = {"config": {"dataset": "digits", "lr": 0.01}, "dataset": {"name": "digits", "classes": ["0", "1"]}}


def every_kind() -> dict[str, torch.Tensor]:
    """Every dtype the fast path lays out, odd shapes, a 0-dim, an empty and two strided tensors."""
    out = {f"t.{str(dtype)[6:]}": (torch.arange(7 * 3) % 5).reshape(7, 3).to(dtype) for dtype in DTYPES}
    out["scalar"] = torch.tensor(3.5)
    out["empty"] = torch.empty(0, 4)
    out["transposed"] = torch.arange(12.0).reshape(3, 4).t()
    out["channels_last"] = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    out["bf16"] = torch.randn(5, dtype=torch.bfloat16)
    return out


def check(path, tensors, meta):
    """The file holds exactly `tensors`, and FIXED with `meta` as its record; its checksum holds."""
    state, record = read_checkpoint(path.parent, path.stem)
    assert sorted(state) == sorted(tensors)
    for name, tensor in tensors.items():
        assert state[name].dtype == tensor.dtype and torch.equal(state[name], tensor.contiguous()), name
    assert {k: record[k] for k in (*FIXED, *meta)} == {**FIXED, **meta} and record["format_version"] == 2


def test_the_file_round_trips_every_dtype_shape_and_layout(tmp_path):
    tensors, meta = every_kind(), {"epoch": 1, "note": "ünïcode \" quote", "history": [0.5, None]}
    path = EpochFile(tmp_path / "last.safetensors", FIXED).write(tensors, meta)
    check(path, tensors, meta)
    assert load_safetensors(path.read_bytes()).keys() == tensors.keys()        # the library reads it too
    assert (8 + int.from_bytes(path.read_bytes()[:8], "little")) % 8 == 0       # data aligned like safetensors'


def test_each_write_holds_the_values_of_that_moment(tmp_path):
    """The layout is kept between writes; the values and the record never are."""
    file = EpochFile(tmp_path / "last.safetensors", FIXED)
    weight = torch.zeros(4, 3)
    for epoch in range(1, 4):
        weight.add_(epoch)                                     # updated in place, as an optimizer does
        tensors = {"weight": weight, "rng": torch.full((6,), epoch, dtype=torch.uint8)}
        check(file.write(tensors, {"epoch": epoch, "history": list(range(epoch))}), tensors,
              {"epoch": epoch, "history": list(range(epoch))})


def test_a_changed_set_of_tensors_lays_the_file_out_again(tmp_path):
    file = EpochFile(tmp_path / "last.safetensors", FIXED)
    check(file.write({"a": torch.ones(3)}, {"epoch": 1}), {"a": torch.ones(3)}, {"epoch": 1})
    for tensors in ({"a": torch.ones(3), "momentum": torch.full((3,), 2.0)},      # a buffer appears
                    {"a": torch.ones(2, 2)},                                       # a shape changes
                    {"a": torch.ones(3, dtype=torch.float64)},                     # a dtype changes
                    {"b": torch.arange(5)}):                                       # a name changes
        check(file.write(tensors, {"epoch": 2}), tensors, {"epoch": 2})


def test_a_tensor_the_fast_layout_cannot_take_goes_the_general_way(tmp_path):
    file = EpochFile(tmp_path / "best.safetensors", FIXED)
    file.write({"a": torch.ones(3)}, {"epoch": 1})
    odd = {"a": torch.ones(3), "c": torch.ones(2, dtype=torch.complex64)}
    check(file.write(odd, {"epoch": 2}), odd, {"epoch": 2})
    check(file.write({"a": torch.zeros(3)}, {"epoch": 3}), {"a": torch.zeros(3)}, {"epoch": 3})


def test_a_byte_changed_anywhere_is_caught_by_the_checksum(tmp_path):
    path = EpochFile(tmp_path / "last.safetensors", FIXED).write({"w": torch.randn(100)}, {"epoch": 4})
    blob = path.read_bytes()
    for position in (len(blob) - 1, blob.index(b'"epoch')):
        changed = bytearray(blob)
        changed[position] ^= 0x01
        path.write_bytes(bytes(changed))
        with pytest.raises(CheckpointError, match="corrupt|not a valid"):
            read_checkpoint(tmp_path, "last")


def test_the_record_is_what_save_checkpoint_would_record(tmp_path):
    meta = {"epoch": 2, "val_acc": 0.5}
    path = EpochFile(tmp_path / "best.safetensors", FIXED).write({"w": torch.ones(2)}, meta)
    header = read_header(path.read_bytes(), "best")
    record = json.loads(header["__metadata__"][META_KEY])
    assert record[DIGEST_KEY] != "0" * 64 and list(record)[0] == DIGEST_KEY
    assert {**record, DIGEST_KEY: "0" * 64} == json.loads(record_json({**FIXED, **meta}))


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.Adam(p, lr=0.01, fused=True),
    lambda p: torch.optim.SGD([{"params": p[:1]}, {"params": p[1:], "lr": 0.5}], lr=0.1, momentum=0.9),
    lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5),
])
def test_optimizer_parts_equal_what_its_state_dict_gives(make):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    optimizer = make(list(model.parameters()))
    for _ in range(2):
        model(torch.randn(5, 4)).sum().backward()
        optimizer.step()
    tensors, meta = optimizer_parts(optimizer)
    expected = optimizer.state_dict()
    assert json.dumps(meta["param_groups"]) == json.dumps(expected["param_groups"])
    state = {(index, name): value for index, values in expected["state"].items() for name, value in values.items()}
    assert {(int(k.split(".")[1]), k.split(".", 2)[2]): v for k, v in tensors.items()}.keys() == \
        {key for key, value in state.items() if torch.is_tensor(value)}
    assert all(tensors[f"optim.{i}.{name}"] is value for (i, name), value in state.items() if torch.is_tensor(value))
    assert meta["scalars"] == {f"{i}.{name}": v for (i, name), v in state.items() if not torch.is_tensor(v)}


# -- the writer thread: the training loop's files are finished while the next epoch trains -------------

def wait_for_file(path: str) -> None:
    """A job that holds the writer (a thread or a process) until the test creates `path`."""
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_a_handed_write_holds_the_values_and_record_of_the_moment_it_was_handed(tmp_path, process):
    if process and not can_fork():
        pytest.skip("a writer process needs Linux")
    writer, gate = Writer(process=process), tmp_path / "go"
    writer.register("gate", wait_for_file)
    file = EpochFile(tmp_path / "last.safetensors", FIXED, writer)
    weight, history = torch.zeros(4, 3), [0.5]
    writer.hand("gate", str(gate))                             # holds the writer until the test lets it go
    file.write({"weight": weight}, {"epoch": 1, "history": history})
    writer.send()
    assert not file.path.exists()                              # sent, not written: the caller went on
    weight.add_(1.0)                                           # the next epoch's first step, in place
    history.append(0.25)
    gate.touch()
    writer.wait()
    check(file.path, {"weight": torch.zeros(4, 3)}, {"epoch": 1, "history": [0.5]})
    file.write({"weight": weight}, {"epoch": 2, "history": history})   # the same buffer, a later batch
    writer.close()
    check(file.path, {"weight": torch.ones(4, 3)}, {"epoch": 2, "history": [0.5, 0.25]})
    spares = [spare.name for spare in tmp_path.glob(".last.safetensors.*.spare.tmp")]
    assert spares == [f".last.safetensors.{os.getpid()}.spare.tmp"]           # the caller's, whoever wrote


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_a_file_written_from_its_source_holds_the_source_tensors_of_that_epoch(tmp_path, process):
    """`best` takes the model's bytes from `last`'s buffer in the writer; here the model's tensors lie
    apart in `last` (an int64 buffer sorts before the float32 ones, and optimizer tensors between)."""
    if process and not can_fork():
        pytest.skip("a writer process needs Linux")
    writer = Writer(process=process)
    last = EpochFile(tmp_path / "last.safetensors", FIXED, writer)
    best = EpochFile(tmp_path / "best.safetensors", FIXED, writer, (last, "model."))
    model = {"a.weight": torch.zeros(3, 2), "bn.count": torch.tensor(0), "z.bias": torch.zeros(5)}
    optim = {"optim.0.exp_avg": torch.zeros(3, 2), "optim.1.step": torch.tensor(0.0, dtype=torch.float64)}
    for epoch in (1, 2, 3):
        for tensor in model.values():
            tensor.add_(epoch)                                 # the epoch's training, in place
        staged = {**{f"model.{k}": v for k, v in model.items()}, **optim, "rng": torch.full((4,), epoch, dtype=torch.uint8)}
        if epoch == 3:
            staged["optim.2.momentum"] = torch.ones(2)         # a new optimizer tensor: `last` laid out again
        job = last.stage(staged, {"epoch": epoch})
        best.write_from_source(model, {"epoch": epoch})
        writer.hand(*job)
        writer.send()
        writer.wait()
        check(best.path, {k: v.clone() for k, v in model.items()}, {"epoch": epoch})
        check(last.path, staged, {"epoch": epoch})
    assert len(best._ranges[2]) == 2                           # apart in `last`: two ranges, not one per tensor
    writer.close()
