"""Exact MCA / Zorro / EAO attention and pooling patterns for small layouts (spec §1a, §2a, §3b)."""

from __future__ import annotations

import pytest
import torch

from fusioncore.layers.masks import (
    attention_mask,
    channel_name,
    channels_from_combos,
    key_valid,
    make_layout,
    pooling_mask,
)


def T(rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_channels_follow_fusion_combos_in_itertools_order():
    expected = [(0, 1, 2, 3), (0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3), (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert channels_from_combos(4, (4, 3, 2)) == expected
    assert channels_from_combos(4) == expected  # default = sizes M..2: the paper's 11 channels
    assert channels_from_combos(3, (3,)) == [(0, 1, 2)]
    assert channel_name((0, 2), ["rna", "meth", "mirna"]) == "rna+mirna"


@pytest.mark.parametrize("combos", [(3, 2), (4, 5, 2), (4, 4), (0,)])
def test_bad_fusion_combos_are_refused(combos):
    with pytest.raises(ValueError, match="fusion_combos"):
        channels_from_combos(4, combos)


def test_mca_mask_three_modalities_one_token_each():
    layout = make_layout((1, 1, 1), "mca", fusion_combos=(3, 2), tokens_per_channel=1)
    assert layout.channels == ((0, 1, 2), (0, 1), (0, 2), (1, 2))
    assert layout.token_types().tolist() == [0, 1, 2, -1, -2, -3, -4]
    expected = T([
        [1, 0, 0, 0, 0, 0, 0],  # modality 0 sees only itself
        [0, 1, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],  # channel (0,1,2): all modalities + own channel
        [1, 1, 0, 0, 1, 0, 0],  # channel (0,1)
        [1, 0, 1, 0, 0, 1, 0],  # channel (0,2)
        [0, 1, 1, 0, 0, 0, 1],  # channel (1,2)
    ])
    assert torch.equal(attention_mask(layout), expected)


def test_mca_mask_blocks_with_several_tokens():
    layout = make_layout((2, 1), "mca", tokens_per_channel=2)  # one channel (0,1), 2 fusion tokens
    expected = T([
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1],
    ])
    assert torch.equal(attention_mask(layout), expected)


def test_mca_channels_do_not_see_each_other_with_two_tokens_per_channel():
    layout = make_layout((1, 1, 1), "mca", fusion_combos=(3, 2), tokens_per_channel=2)
    mask = attention_mask(layout)
    fusion = mask[3:, 3:]
    expected = torch.block_diag(*[torch.ones(2, 2, dtype=torch.bool)] * 4)
    assert torch.equal(fusion, expected)
    assert not mask[:3, 3:].any(), "modality tokens never read fusion tokens"


def test_zorro_mask_fusion_sees_everything():
    layout = make_layout((1, 1, 1), "zorro", tokens_per_channel=1)
    assert layout.n_fusion == 4  # as many fusion tokens as MCA would have (4 channels x 1)
    expected = T([
        [1, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1],
    ])
    assert torch.equal(attention_mask(layout), expected)


def test_none_mask_is_full_attention():
    layout = make_layout((1, 2), "none")
    assert layout.n_fusion == 0
    assert torch.equal(attention_mask(layout), torch.ones(3, 3, dtype=torch.bool))


def test_paper_layout_sizes():
    layout = make_layout((800, 198, 800, 662), "mca", tokens_per_channel=8)
    assert layout.n_channels == 11 and layout.n_fusion == 88 and layout.seq_len == 2548
    mask = attention_mask(layout)
    # channel (1, 2) = index 8: its 8 tokens see modalities 1 and 2 and themselves only
    rows = mask[2460 + 8 * 8 : 2460 + 9 * 8]
    assert rows[:, 800:998].all() and rows[:, 998:1798].all()
    assert not rows[:, :800].any() and not rows[:, 1798:2460].any()
    assert rows[:, 2460 + 64 : 2460 + 72].all() and rows[:, 2460:].sum().item() == 64


def test_pooling_masks():
    layout = make_layout((2, 1), "mca", tokens_per_channel=2)
    assert torch.equal(pooling_mask(layout), T([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 1]]))
    mca = make_layout((1, 1, 1), "mca", fusion_combos=(3, 2), tokens_per_channel=1)
    assert torch.equal(pooling_mask(mca), torch.eye(7, dtype=torch.bool))  # one query per modality / channel
    zorro = make_layout((1, 1, 1), "zorro", tokens_per_channel=1)
    assert torch.equal(pooling_mask(zorro), T([
        [1, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 1, 1],  # one fusion query over all fusion tokens
    ]))


def test_key_valid_appends_fusion_tokens():
    layout = make_layout((2, 1), "mca", tokens_per_channel=2)
    kv = key_valid(layout, [T([[1, 0], [0, 0]]), T([[1], [1]])])
    assert torch.equal(kv, T([[1, 0, 1, 1, 1], [0, 0, 1, 1, 1]]))


def test_layout_validation():
    with pytest.raises(ValueError, match="mode"):
        make_layout((1, 1), "dense")
    with pytest.raises(ValueError, match="channel"):
        from fusioncore.layers.masks import TokenLayout

        TokenLayout((1, 1), ((0, 5),), 1, "mca")
