"""Evaluation sets named on the command line (``--sets DIR[:LABELS] ...``), checked without torch.

Kept free of torch and the model so that ``crnn eval`` and ``crnn calibrate`` refuse a wrong path in
a fraction of a second, before the seconds that loading them takes.
"""

from __future__ import annotations

from pathlib import Path

from crnn.config import DatasetConfig, TransformsConfig


def sets_dataset(specs: list[str], label_file: str, transforms: TransformsConfig) -> DatasetConfig:
    """Eval sets given as ``DIR[:LABELS]`` (a folder with a label file, else an LMDB tree) as one dataset.

    Raises:
        FileNotFoundError: a folder is missing, or holds neither the label file nor an LMDB.
    """
    members = []
    for spec in specs:
        d, _, label = spec.partition(":")
        labels = Path(d) / (label or label_file)
        if not Path(d).is_dir():
            raise FileNotFoundError(f"--sets {d}: no such folder")
        if labels.is_file():
            members.append(DatasetConfig(name="SimpleDataSet", data_dir=d, label_file_list=[str(labels)]))
        elif any(Path(d).rglob("data.mdb")):
            members.append(DatasetConfig(name="LMDBDataSet", data_dir=d))
        else:
            raise FileNotFoundError(f"--sets {d}: no label file {labels} and no LMDB (data.mdb) in it; "
                                    "name the label file as DIR:LABELS or with --label-file")
    return DatasetConfig(name="MixDataSet", datasets=members, transforms=transforms)
