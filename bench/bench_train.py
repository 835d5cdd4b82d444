"""Training-speed benchmark: `core.train` against the classic template's DataLoader loop.

Two cases, each trained twice in the same process on the same samples, split, model, initial
weights and hyperparameters:

- cnn: the `cnn` model on real MNIST (t10k files only: 8,000 train / 2,000 valid), batch 512,
  Adam lr 1e-3, width 64, dropout 0.1, 3 epochs (`--epochs`).
- mlp: the `mlp` model (hidden 32,16) on scikit-learn's bundled 8x8 digits, batch 64, Adam lr 1e-3,
  10 epochs (`--mlp-epochs`).

"template" is the textbook loop: a per-item `Dataset` whose items go through torchvision's
`ToTensor()` + `Normalize(mean, std)` (MNIST items are PIL images), `DataLoader(shuffle=True,
num_workers=2)`, plain `torch.optim.Adam`, `loss.item()` every step, and a `torch.no_grad()`
validation pass. "core" is `core.train`.

Both sides are timed the same way: wall-clock seconds per epoch from the start of the training pass
to the end of validation (core: `EpochMetrics.seconds`, measured that way inside core). Epochs run
interleaved (template 1, core 1, template 2, ...) so that a change in machine load hits both sides. Reported per
side: the first epoch, the median of the later epochs, training samples per second, and the final
validation accuracy. For the CNN it also counts FLOPs of one training step (forward + backward,
FlopCounterMode) and compares core's achieved GFLOP/s with a float32 matmul timed in the same run.

    python bench/bench_train.py                      # both cases, human-readable lines
    python bench/bench_train.py --json               # also one JSON summary on stdout
    python bench/bench_train.py --device cuda --profile
Options: --data-root DIR (default <repo>/../shared/data), --epochs N, --mlp-epochs N,
--workers N (template DataLoader workers), --matmul-size N, --profile (top ops of core's 2nd epoch),
--acc-seeds N (CNN only, N >= 2: validation accuracy of both sides at seeds 1..N, untimed, with
the mean difference and its standard error; JSON key cnn.accuracy_over_seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from torchvision import transforms  # noqa: E402

from core.config import ConfigError, TrainConfig  # noqa: E402
from core.datacheck import IDX_FOLDERS, find_idx  # noqa: E402
from core.datafiles import read_idx  # noqa: E402
from core.datasets import TensorData, load_dataset, split  # noqa: E402
from core.models import build_model  # noqa: E402
from core.training import resolve_device, seed_everything, train  # noqa: E402

TARGETS = {"cnn_speedup": 1.5, "cnn_acc_points": 1.0, "mlp_speedup": 3.0, "cnn_matmul_share": 0.60}


@dataclass(frozen=True)
class Epoch:
    seconds: float          # training pass + validation, wall clock
    train_seconds: float    # training pass only
    val_acc: float


@dataclass
class SideResult:
    """One training run (template or core): per-epoch timings and the final validation accuracy."""

    epoch_seconds: list[float]
    train_seconds: list[float]
    val_acc: float
    num_train: int

    @property
    def first_s(self) -> float:
        return self.epoch_seconds[0]

    @property
    def later_s(self) -> float:
        """Median seconds per epoch over the epochs after the first (the first when there is one)."""
        return statistics.median(self.epoch_seconds[1:] or self.epoch_seconds)

    @property
    def samples_per_s(self) -> float:
        """Training samples per second of training time, median over the later epochs."""
        return self.num_train / statistics.median(self.train_seconds[1:] or self.train_seconds)

    def summary(self) -> dict:
        return {**asdict(self), "first_epoch_s": self.first_s, "later_epoch_s": self.later_s,
                "train_samples_per_s": self.samples_per_s}


# -- the classic template ------------------------------------------------------------------------

class ItemDataset(Dataset):
    """One sample at a time: uint8 images become PIL images, float images stay arrays; `transform`
    (ToTensor + Normalize) turns each into a (C, H, W) float tensor."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.images[index]
        if image.dtype == np.uint8:
            image = Image.fromarray(image)                  # mode "L", as torchvision's MNIST does
        return self.transform(image), int(self.labels[index])


def template_datasets(raw: tuple, data: TensorData) -> tuple[ItemDataset, ItemDataset]:
    """Train and valid `ItemDataset`s over the raw split, normalised with core's mean and std."""
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize(data.info.mean, data.info.std)])
    train_x, train_y, val_x, val_y = (t.numpy() for t in raw)
    return ItemDataset(train_x, train_y, transform), ItemDataset(val_x, val_y, transform)


def check_same_samples(dataset: ItemDataset, x: torch.Tensor, y: torch.Tensor, count: int = 256) -> None:
    """Fail loudly unless the template's items equal core's tensors (first `count` images, all labels)."""
    items = torch.stack([dataset[i][0] for i in range(min(count, len(dataset)))])
    diff = (items - x[: len(items)]).abs().max().item()
    if diff > 1e-5 or not torch.equal(torch.from_numpy(dataset.labels).long(), y):
        raise SystemExit(f"template samples differ from core's (max abs diff {diff:.2e}); benchmark aborted")


def template_epochs(config: TrainConfig, data: TensorData, raw: tuple, device: torch.device,
                    workers: int) -> Iterator[Epoch]:
    """The textbook loop: per-item Dataset, DataLoader(shuffle, workers), Adam, loss.item() per step."""
    train_set, val_set = template_datasets(raw, data)
    check_same_samples(train_set, data.train_x, data.train_y)
    seed_everything(config.seed)
    model = build_model(config, data.info).to(device)       # same initial weights as core
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_fn = nn.CrossEntropyLoss()
    pin = device.type == "cuda"
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, num_workers=workers,
                              pin_memory=pin, generator=torch.Generator().manual_seed(config.seed))
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False, num_workers=workers,
                            pin_memory=pin)
    for _ in range(config.epochs):
        start = time.perf_counter()
        template_train_epoch(model, train_loader, optimizer, loss_fn, device)
        train_s = time.perf_counter() - start
        val_acc = template_validate(model, val_loader, device)
        yield Epoch(time.perf_counter() - start, train_s, val_acc)


def template_train_epoch(model, loader, optimizer, loss_fn, device) -> float:
    model.train()
    running_loss = 0.0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    return running_loss / len(loader)


def template_validate(model, loader, device) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += y.shape[0]
    return correct / total


# -- core ------------------------------------------------------------------------------------------

def core_epochs(config: TrainConfig, data: TensorData) -> Iterator[Epoch]:
    """core.train; epoch time is EpochMetrics.seconds, train time is num_train / samples_per_s."""
    for m in train(config, data):
        yield Epoch(m.seconds, data.num_train / m.samples_per_s, m.val_acc)


def interleaved(template: Iterator[Epoch], core: Iterator[Epoch], num_train: int) -> tuple:
    """Alternate epochs (template, core, template, ...) so that both sides see the same machine."""
    sides = (SideResult([], [], 0.0, num_train), SideResult([], [], 0.0, num_train))
    for epochs in zip(template, core):
        for side, epoch in zip(sides, epochs):
            side.epoch_seconds.append(epoch.seconds)
            side.train_seconds.append(epoch.train_seconds)
            side.val_acc = epoch.val_acc
    return sides


def profile_core(config: TrainConfig, data: TensorData, rows: int = 15) -> str:
    """Top ops (by input shape) by self CPU time over core's second epoch (the first one warms up)."""
    from torch.profiler import ProfilerActivity, profile

    on_gpu = resolve_device(config.device).type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    run = train(config.replace(epochs=2), data)
    next(run)
    with profile(activities=activities, record_shapes=True) as prof:
        next(run)
    run.close()
    key = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    title = f"\n  core, {config.model}: top ops by {key} over epoch 2 (torch.profiler)\n"
    table = prof.key_averages(group_by_input_shape=True).table(
        sort_by=key, row_limit=rows, max_name_column_width=40, max_shapes_column_width=60)
    return title + table


# -- raw samples, the same split as core ----------------------------------------------------------

def raw_mnist(config: TrainConfig) -> tuple | None:
    """(train_x uint8 (N,28,28), train_y, val_x, val_y) exactly as core splits them, or None."""
    raw_dir = Path(config.data_root) / IDX_FOLDERS["mnist"] / "raw"
    pairs = {}
    for part in ("train", "t10k"):
        images = find_idx(raw_dir, f"{part}-images-idx3-ubyte")
        labels = find_idx(raw_dir, f"{part}-labels-idx1-ubyte")
        if images is not None and labels is not None:
            pairs[part] = (torch.from_numpy(read_idx(images).copy()),
                           torch.from_numpy(read_idx(labels).astype(np.int64)))
    if "t10k" not in pairs:
        return None
    if "train" in pairs:                                     # core: train files train, t10k validates
        return (*pairs["train"], *pairs["t10k"])
    return split(*pairs["t10k"], config.val_fraction, config.seed)


def raw_digits(config: TrainConfig) -> tuple:
    """(train_x float32 (N,8,8) in 0..1, train_y, val_x, val_y) exactly as core splits them."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))
    return split(x, torch.from_numpy(bunch.target.astype(np.int64)), config.val_fraction, config.seed)


# -- compute rates ---------------------------------------------------------------------------------

def train_flops_per_sample(config: TrainConfig, data: TensorData, batch: int = 512) -> float:
    """FLOPs of one forward + backward on a batch, per sample (matmuls and convolutions only)."""
    seed_everything(config.seed)
    model = build_model(config, data.info)
    x, y = data.train_x[:batch], data.train_y[:batch]
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / x.shape[0]


def matmul_gflops(device: torch.device, n: int, repeats: int = 10) -> float:
    """Median GFLOP/s of an n x n float32 matmul (3 warm-up runs; on a GPU each sample is 20 matmuls)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    inner = 20 if device.type == "cuda" else 1
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            a @ b
        sync()
        times.append((time.perf_counter() - start) / inner)
    return 2 * n**3 / statistics.median(times) / 1e9


def environment(device: torch.device) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(), "cpu": cpu,
            "cpu_cores": len(os.sched_getaffinity(0)), "device": str(device), "gpu": gpu}


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, incl. steal; CPU seconds of this process and
    its reaped children, e.g. DataLoader workers). The difference over a run is other load."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))
    return busy, own


def report_interference(start: tuple[float, float], wall_s: float, cores: int) -> dict:
    """Say how much CPU other processes (or the hypervisor) took while the benchmark ran."""
    busy, own = cpu_seconds()
    other = max(0.0, (busy - start[0]) - (own - start[1]))
    share = other / max(wall_s * cores, 1e-9)
    say(f"\nother load during the run: {other:.1f} CPU-s = {share:.0%} of {cores} cores x {wall_s:.0f} s"
        + ("   WARNING: the machine was busy; rerun on an idle machine" if share > 0.05 else ""))
    return {"other_cpu_s": other, "other_share": share, "wall_s": wall_s}


# -- the cases -------------------------------------------------------------------------------------

def compare(name: str, config: TrainConfig, raw: tuple, device: torch.device, args) -> dict:
    """Template and core on one config, epochs interleaved; prints a table, returns the JSON part."""
    data = load_dataset(config)
    template, core = interleaved(template_epochs(config, data, raw, device, args.workers),
                                 core_epochs(config, data), data.num_train)
    speedup = template.later_s / core.later_s
    say(f"  {'':10}{'first epoch':>13}{'later epochs':>14}{'train samples/s':>17}{'val acc':>9}")
    for label, side in (("template", template), ("core", core)):
        say(f"  {label:10}{side.first_s:>11.3f} s{side.later_s:>12.3f} s{side.samples_per_s:>17,.0f}"
            f"{side.val_acc:>9.2%}")
    acc_points = round(100 * abs(core.val_acc - template.val_acc), 6)
    target = TARGETS[f"{name}_speedup"]
    say(f"  speed-up (template / core, later epochs): {speedup:.2f}x   "
        f"target >= {target}x: {verdict(speedup >= target)}")
    say(f"  val acc difference: {acc_points:.2f} points")
    return {"config": config.to_dict(), "num_train": data.num_train, "num_val": int(data.val_y.shape[0]),
            "template": template.summary(), "core": core.summary(), "speedup": speedup,
            "val_acc_diff_points": acc_points}


def cnn_case(args, device: torch.device, matmul: float) -> dict | None:
    config = TrainConfig(dataset="mnist", model="cnn", data_root=str(args.data_root), batch_size=512,
                         lr=1e-3, epochs=args.epochs, seed=args.seed, optimizer="adam", width=64, dropout=0.1,
                         device=args.device)
    raw = raw_mnist(config)
    if raw is None:
        say(f"\nCNN on MNIST: SKIPPED - no t10k-images/labels-idx*-ubyte[.gz] in "
            f"{Path(config.data_root) / 'MNIST' / 'raw'} (pass --data-root)")
        return None
    say(f"\nCNN on MNIST: {len(raw[1])} train / {len(raw[3])} valid, batch 512, Adam lr 1e-3, width 64, "
        f"dropout 0.1, {args.epochs} epochs")
    result = compare("cnn", config, raw, device, args)
    ok = result["val_acc_diff_points"] <= TARGETS["cnn_acc_points"]
    say(f"  val acc within {TARGETS['cnn_acc_points']:g} point: {verdict(ok)}")
    flops = train_flops_per_sample(config, load_dataset(config))
    for side in ("template", "core"):
        result[side]["train_gflops"] = flops * result[side]["train_samples_per_s"] / 1e9
    share = result["core"]["train_gflops"] / matmul
    say(f"  training step: {flops / 1e6:.2f} MFLOP per sample (forward + backward); achieved "
        f"{result['core']['train_gflops']:.1f} GFLOP/s core, {result['template']['train_gflops']:.1f} template")
    say(f"  core = {share:.0%} of the matmul's {matmul:.1f} GFLOP/s   target >= "
        f"{TARGETS['cnn_matmul_share']:.0%}: {verdict(share >= TARGETS['cnn_matmul_share'])}")
    result.update(flops_per_sample=flops, matmul_share=share)
    if args.acc_seeds:
        say(f"\n  accuracy after {args.epochs} epochs at seeds 1..{args.acc_seeds} (untimed):")
        result["accuracy_over_seeds"] = accuracy_over_seeds(config, device, args)
    if args.profile:
        say(profile_core(config, load_dataset(config)))
    return result


def accuracy_over_seeds(config: TrainConfig, device: torch.device, args) -> dict:
    """Validation accuracy of template and core after the same epochs at seeds 1..args.acc_seeds (split,
    initial weights, shuffling and dropout all follow the seed); untimed. One seed's 3-epoch accuracy
    moves by 1-2 points from seed to seed, so the mean difference is what says whether core is worse."""
    rows = []
    for seed in range(1, args.acc_seeds + 1):
        seeded = config.replace(seed=seed)
        data = load_dataset(seeded)
        template, core = interleaved(template_epochs(seeded, data, raw_mnist(seeded), device, args.workers),
                                     core_epochs(seeded, data), data.num_train)
        rows.append({"seed": seed, "template": template.val_acc, "core": core.val_acc})
        say(f"  seed {seed}: template {template.val_acc:.2%}, core {core.val_acc:.2%}")
    diffs = [100 * (row["core"] - row["template"]) for row in rows]
    spread = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    result = {"seeds": rows, "diff_points": diffs, "mean_diff_points": statistics.fmean(diffs),
              "stderr_points": spread}
    for side in ("template", "core"):
        values = [100 * row[side] for row in rows]
        result[side] = {"mean": statistics.fmean(values),
                        "stdev": statistics.stdev(values) if len(values) > 1 else float("nan")}
        say(f"  {side:9} mean {result[side]['mean']:.2f} %, standard deviation {result[side]['stdev']:.2f} points")
    ok = result["mean_diff_points"] >= -TARGETS["cnn_acc_points"]
    say(f"  core - template: mean {result['mean_diff_points']:+.2f} points (standard error {spread:.2f}) over "
        f"{len(rows)} seeds   no worse than {TARGETS['cnn_acc_points']:g} point: {verdict(ok)}")
    result["met"] = ok
    return result


def mlp_case(args, device: torch.device) -> dict:
    config = TrainConfig(dataset="digits", model="mlp", batch_size=64, lr=1e-3, epochs=args.mlp_epochs,
                         seed=args.seed, optimizer="adam", hidden=(32, 16), device=args.device)
    raw = raw_digits(config)
    say(f"\nMLP on digits: {len(raw[1])} train / {len(raw[3])} valid, batch 64, Adam lr 1e-3, hidden 32,16, "
        f"{args.mlp_epochs} epochs")
    result = compare("mlp", config, raw, device, args)
    if args.profile:
        say(profile_core(config, load_dataset(config)))
    return result


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def say(text: str) -> None:
    """Human-readable output: stdout, or stderr when --json keeps stdout for the JSON summary."""
    print(text, file=sys.stderr if ARGS.json else sys.stdout, flush=True)


def case_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or set(names) - {"cnn", "mlp"}:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of cnn,mlp, got {text!r}")
    return names


def seed_count(text: str) -> int:
    """--acc-seeds: 0 (off) or at least 2 seeds, the fewest that give a standard deviation."""
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count != 0 and count < 2:
        raise argparse.ArgumentTypeError(f"expected 0 (off) or a whole number of seeds >= 2, got {text!r}")
    return count


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=3, help="CNN epochs (default 3)")
    parser.add_argument("--mlp-epochs", type=int, default=10, help="MLP epochs (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="template DataLoader workers (default 2)")
    parser.add_argument("--cases", type=case_list, default=["cnn", "mlp"],
                        help="comma-separated subset of cnn,mlp (default both)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--acc-seeds", type=seed_count, default=0, metavar="N",
                        help="CNN: also compare val acc at seeds 1..N (N >= 2), untimed (default 0: off)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--profile", action="store_true", help="print top ops of core's second epoch")
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    args = parser.parse_args(argv)
    if args.acc_seeds and "cnn" not in args.cases:
        parser.error("--acc-seeds applies to the cnn case only; add cnn to --cases or drop --acc-seeds")
    return args


def main(argv=None) -> int:
    global ARGS
    ARGS = args = parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    env = environment(device)
    start, wall = cpu_seconds(), time.perf_counter()
    say(f"torch {env['torch']} | {env['threads']} threads (interop {env['interop_threads']}) | CPU {env['cpu']}, "
        f"{env['cpu_cores']} cores | device {device}{' (' + env['gpu'] + ')' if env['gpu'] else ''}")
    matmul = matmul_gflops(device, args.matmul_size)
    say(f"matmul {args.matmul_size}x{args.matmul_size} float32: {matmul:.1f} GFLOP/s (median of 10)")
    summary = {"environment": env, "matmul_gflops": matmul,
               "cnn": cnn_case(args, device, matmul) if "cnn" in args.cases else None,
               "mlp": mlp_case(args, device) if "mlp" in args.cases else None}
    summary["interference"] = report_interference(start, time.perf_counter() - wall, env["cpu_cores"])
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return 0


ARGS = argparse.Namespace(json=False)

if __name__ == "__main__":
    sys.exit(main())
