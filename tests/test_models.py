import pytest
import torch

from core.config import TrainConfig
from core.datasets import DatasetInfo
from core.errors import DataError
from core.models import build_model, count_parameters


def info(kind, shape, classes=10):
    return DatasetInfo("x", kind, tuple(map(str, range(classes))), shape, (), ())


@pytest.mark.parametrize("model,kind,shape", [
    ("mlp", "scalar", (1,)), ("mlp", "image", (1, 8, 8)), ("logreg", "point", (2,)),
    ("cnn", "image", (1, 8, 8)), ("cnn", "image", (1, 28, 28)), ("cnn", "image", (3, 32, 32)),
])
def test_forward_shape(model, kind, shape):
    net = build_model(TrainConfig(model=model), info(kind, shape))
    assert net(torch.randn(5, *shape)).shape == (5, 10)


def test_mlp_sizes_follow_hidden():
    net = build_model(TrainConfig(hidden=(32, 16)), info("scalar", (1,), 2))
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(1, 32), (32, 16), (16, 2)]
    assert count_parameters(net) == (1 * 32 + 32) + (32 * 16 + 16) + (16 * 2 + 2)


def test_cnn_width_dropout_and_layout():
    net = build_model(TrainConfig(model="cnn", width=16, dropout=0.3), info("image", (1, 28, 28)))
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU", "Dropout2d",
                     "GlobalMaxPool", "Flatten", "Linear", "ReLU", "Linear"]
    assert net[0].out_channels == 16 and net[6].p == 0.3


def test_global_max_pool_is_the_adaptive_max_pool_forward_and_backward():
    from core.models import GlobalMaxPool

    x = torch.randn(4, 6, 5, 7, generator=torch.Generator().manual_seed(0)).to(memory_format=torch.channels_last)
    weights = torch.randn(4, 6, 1, 1, generator=torch.Generator().manual_seed(1))
    results = []
    for pool in (GlobalMaxPool(), torch.nn.AdaptiveMaxPool2d(1)):
        leaf = x.clone().requires_grad_(True)
        out = pool(leaf)
        (out * weights).sum().backward()
        results.append((out.detach(), leaf.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_cnn_pooling_before_relu_is_the_textbook_function_and_gradient():
    """conv-relu-pool and conv-pool-relu compute the same outputs and the same weight gradients."""
    torch.manual_seed(0)
    net = build_model(TrainConfig(model="cnn", width=8, dropout=0.0), info("image", (1, 28, 28)))
    textbook = torch.nn.Sequential(net[0], torch.nn.ReLU(), torch.nn.MaxPool2d(2), net[3], torch.nn.ReLU(),
                                   torch.nn.MaxPool2d(2), *net[6:])
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    grads = []
    for model in (net, textbook):
        model.zero_grad()
        out = model(x)
        torch.nn.functional.cross_entropy(out, y).backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for mine, theirs in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(mine, theirs)


def test_cnn_refuses_non_images():
    with pytest.raises(DataError, match="needs an image dataset"):
        build_model(TrainConfig(model="cnn"), info("point", (2,)))
