"""Display names of evaluation sets."""

from __future__ import annotations

from crnn.evaluate import set_name


def test_set_names() -> None:
    assert set_name("../shared/data/eval/iiit5k/labels.tsv") == "iiit5k"
    assert set_name("../shared/data/eval/ic13/labels_1015.tsv") == "ic13/labels_1015"
    # crnn synth's LMDB leaves are all called shard_NNNNN: the set's folder tells them apart
    assert set_name("../synthdata/val_hard/arc/shard_00000") == "arc/shard_00000"
    assert set_name("data_lmdb/train") == "train"
