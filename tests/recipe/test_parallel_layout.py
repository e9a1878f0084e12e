import pytest

from engineforge.recipe.parallel_layout import ParallelLayout
from engineforge.recipe.schema import ParallelSpec


def test_a_resolved_section_is_one_layout_with_its_world_size_and_label():
    layout = ParallelLayout.of(ParallelSpec(tensor=4, pipeline=2, expert=2))
    assert layout == ParallelLayout(4, 2, 2)
    assert (layout.world_size, layout.moe_tp, layout.label) == (8, 2, "tp4-pp2-ep2")


def test_an_unresolved_auto_is_refused():
    with pytest.raises(ValueError):
        ParallelLayout.of(ParallelSpec(tensor="auto"))
