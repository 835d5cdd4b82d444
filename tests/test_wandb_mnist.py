"""End to end: a W&B-style MNIST script (train, case table, model artifact, resume) against the store.

The script below is written as a W&B user would write it, with `import core.wandb as wandb` the only
change; the test then checks what the store holds.
"""


import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import core.wandb as wandb
from core.config import TrainConfig
from core.datasets import load_dataset
from core.models import build_model
from core.status import RunStatus
from core.tracker import Store
from tests.conftest import MNIST_ROOT, needs_mnist

CONFIG = dict(project="wandb_demo", width=16, dropout=0.1, lr=3e-3, batch_size=64, epochs=2, seed=0)


def mnist(config: dict):
    """Real MNIST (3000 images: 2400 train / 600 valid) and a small CNN for it."""
    train_config = TrainConfig(dataset="mnist", data_root=str(MNIST_ROOT), max_samples=3000, model="cnn",
                               width=config["width"], dropout=config["dropout"], seed=config["seed"])
    data = load_dataset(train_config)
    torch.manual_seed(config["seed"])
    return data, build_model(train_config, data.info)


def train_epoch(model, optimizer, data, batch_size: int, generator) -> float:
    model.train()
    order = torch.randperm(data.num_train, generator=generator)
    total = 0.0
    for start in range(0, data.num_train, batch_size):
        index = order[start:start + batch_size]
        loss = nn.functional.cross_entropy(model(data.train_x[index]), data.train_y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * index.numel()
    return total / data.num_train


@torch.inference_mode()
def predict(model, data) -> torch.Tensor:
    model.eval()
    return model(data.val_x).argmax(dim=1)                     # (num_val,)


def case_table(data, predictions: torch.Tensor) -> "wandb.Table":
    """50 good and 50 bad validation cases, pixels brought back to 0..1 for wandb.Image."""
    mean, std = data.info.mean[0], data.info.std[0]
    table = wandb.Table(columns=["image", "truth", "prediction", "kind"])
    for kind, hits in (("good", predictions == data.val_y), ("bad", predictions != data.val_y)):
        for i in hits.nonzero()[:50, 0].tolist():
            pixels = (data.val_x[i] * std + mean).clamp(0, 1)     # (1, 28, 28) floats
            table.add_data(wandb.Image(pixels, caption=f"{data.val_y[i].item()}"), data.val_y[i], predictions[i], kind)
    return table


def train_script(checkpoint) -> str:
    """The W&B way: init, log per epoch, log a case table and the best model, finish."""
    config = dict(CONFIG)
    run = wandb.init(project=config.pop("project"), config=config, name="mnist-cnn", save_code=True)
    data, model = mnist(wandb.config.as_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=wandb.config.lr)
    generator = torch.Generator().manual_seed(wandb.config.seed)
    best = -1.0
    for epoch in range(1, wandb.config.epochs + 1):
        train_loss = train_epoch(model, optimizer, data, wandb.config.batch_size, generator)
        val_acc = (predict(model, data) == data.val_y).float().mean().item()
        if val_acc > best:
            best = val_acc
            save_file(model.state_dict(), checkpoint)
        wandb.log({"epoch": epoch, "train_loss": train_loss, "val_acc": val_acc, "best_val_acc": best})
    model.load_state_dict(load_file(checkpoint))
    wandb.log({"cases": case_table(data, predict(model, data))})
    artifact = wandb.Artifact("mnist-cnn", type="model", metadata={"val_acc": best})
    artifact.add_file(checkpoint)
    wandb.log_artifact(artifact, aliases=["best"])
    wandb.finish()
    return run.id


def resume_script(run_id: str) -> None:
    """Continue the run for one more epoch from its best model, as W&B's resume='must' does."""
    with wandb.init(project="wandb_demo", id=run_id, resume="must") as run:
        data, model = mnist(wandb.config.as_dict())
        folder = run.use_artifact("mnist-cnn:best").download()
        model.load_state_dict(load_file(f"{folder}/best.safetensors"))
        optimizer = torch.optim.Adam(model.parameters(), lr=wandb.config.lr)
        train_loss = train_epoch(model, optimizer, data, wandb.config.batch_size, torch.Generator().manual_seed(1))
        val_acc = (predict(model, data) == data.val_y).float().mean().item()
        wandb.log({"epoch": 3, "train_loss": train_loss, "val_acc": val_acc})


@pytest.mark.slow
@needs_mnist
def test_wandb_mnist_script_train_cases_artifact_resume(tmp_path):
    torch.set_num_threads(2)
    run_id = train_script(tmp_path / "best.safetensors")
    resume_script(run_id)
    store = Store()
    record = store.get_run(run_id)
    assert record.status is RunStatus.FINISHED and record.project == "wandb_demo"
    assert record.config == {k: v for k, v in CONFIG.items() if k != "project"}

    rows = store.metric_rows(run_id, ["val_acc"])
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["step"] for r in rows] == [0, 1, 3]              # step 2 holds the case table
    assert all(0.3 < r["value"] <= 1 for r in rows)
    assert record.summary["val_acc"] == rows[-1]["value"] and record.summary["epoch"] == 3
    assert record.summary["best_val_acc"] == max(r["value"] for r in rows[:2])

    (table,) = store.tables(run_id)
    assert table["key"] == "cases" and table["step"] == 2 and len(table["rows"]) == 100
    assert [row[3] for row in table["rows"]] == ["good"] * 50 + ["bad"] * 50
    assert all((row[1] == row[2]) == (row[3] == "good") for row in table["rows"])
    images = [row[0] for row in table["rows"]]
    assert all(cell["_type"] == "image" and (cell["width"], cell["height"]) == (28, 28) for cell in images)
    assert len({cell["sha256"] for cell in images}) == 100
    assert all(store.blob_path(cell["sha256"]).is_file() for cell in images)

    artifact = store.get_artifact("mnist-cnn", "best")
    assert artifact.version == 0 and set(artifact.aliases) == {"best", "latest"}
    assert [path for path, _, _ in artifact.files] == ["best.safetensors"]
    assert artifact.producer_run == run_id and store.artifact_users(artifact.id) == [run_id]
    assert artifact.metadata["val_acc"] == record.summary["best_val_acc"]
