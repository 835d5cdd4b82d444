import math

import pytest

from core.earlystop import EarlyStopping


def test_stops_after_patience_epochs_without_improvement():
    stopper = EarlyStopping(patience=2, mode="min")
    decisions = [stopper.update(v) for v in [1.0, 0.8, 0.85, 0.9]]
    assert [d.improved for d in decisions] == [True, True, False, False]
    assert [d.counter for d in decisions] == [0, 0, 1, 2]
    assert decisions[2].stop_reason is None
    assert "did not improve" in decisions[3].stop_reason


def test_min_delta_and_max_mode():
    stopper = EarlyStopping(patience=1, mode="max", min_delta=0.05, metric="val_acc")
    assert stopper.update(0.5).improved
    second = stopper.update(0.54)          # +0.04 is not more than min_delta
    assert not second.improved and "val_acc" in second.stop_reason


def test_nan_never_counts_as_improvement_and_none_patience_never_stops():
    stopper = EarlyStopping(patience=None)
    assert stopper.update(1.0).improved
    assert not stopper.update(math.nan).improved
    assert all(stopper.update(2.0).stop_reason is None for _ in range(50))


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"patience": 1, "mode": "up"},
                                    {"patience": 1, "min_delta": -1}])
def test_constructor_validates(kwargs):
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)
