"""core.formspec: which config fields the Train form shows, grouped."""

from core.formspec import FORM_GROUPS, visible_groups


def test_visible_groups_open_the_first_three_and_hide_data_root_in_a_demo():
    groups = visible_groups()
    assert [(g, opened) for g, opened, _ in groups] == [
        ("Data", True), ("Model", True), ("Optimisation", True), ("Schedule", False), ("Early stopping", False),
        ("Runtime", False)]
    assert [f.name for f in groups[0][2]] == [f.name for f in FORM_GROUPS[0][1]]
    assert "data_root" in [f.name for f in groups[0][2]]
    demo = visible_groups(demo=True)
    assert [f.name for f in demo[0][2]] == ["dataset", "num_samples", "noise", "val_fraction", "max_samples",
                                            "image_size"]
    assert demo[1:] == groups[1:]
