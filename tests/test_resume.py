"""The resumable `last` checkpoint: a current file that fails its checks gives way to the spare."""

import pytest
import torch

from core.checkpoint import read_checkpoint
from core.config import TrainConfig
from core.datasets import load_dataset
from core.errors import CheckpointError
from core.models import build_model
from core.resume import read_last, save_last


def write_epochs(folder, epochs):
    """`last` written after each of `epochs` the way the training loop writes it (no fsync, in turn)."""
    config = TrainConfig(dataset="threshold", model="logreg")
    data = load_dataset(config)
    model = build_model(config, data.info)
    optimizer = torch.optim.Adam(model.parameters())
    generator = torch.Generator().manual_seed(0)
    for epoch in epochs:
        optimizer.zero_grad()
        model(data.train_x[:8]).sum().backward()
        optimizer.step()
        save_last(folder, model, optimizer, generator, {"config": config.to_dict(), "dataset": data.info.to_dict(),
                                                        "epoch": epoch, "step": epoch * 10}, durable=False)
    return model


def spares(folder):
    return sorted(folder.glob(".last.safetensors.*.spare.tmp"))


def test_a_last_checkpoint_that_fails_its_checksum_gives_way_to_the_previous_epoch(tmp_path):
    write_epochs(tmp_path, [1, 2, 3])
    last = tmp_path / "last.safetensors"
    blob = bytearray(last.read_bytes())
    blob[-100:] = bytes(100)                       # a power cut: the last write's tail never reached the disk
    last.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(tmp_path, "last")
    state = read_last(tmp_path)
    assert (state.epoch, state.step) == (2, 20)
    assert read_checkpoint(tmp_path, "last")[1]["epoch"] == 2 and spares(tmp_path) == []   # put in its place


def test_without_a_whole_spare_the_error_stands(tmp_path):
    write_epochs(tmp_path, [1, 2])
    (spare,) = spares(tmp_path)
    spare.write_bytes(spare.read_bytes()[:50])      # torn too
    (tmp_path / "last.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        read_last(tmp_path)
    assert spare.exists()


def test_a_whole_last_checkpoint_is_read_as_it_is(tmp_path):
    write_epochs(tmp_path, [1, 2, 3])
    assert read_last(tmp_path).epoch == 3 and len(spares(tmp_path)) == 1
