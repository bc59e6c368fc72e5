"""Tests of espnet_ext.scoring.folding: token folding maps."""

import pytest

from espnet_ext.scoring.folding import fold_texts, read_fold_map


def test_fold_map_folds_every_column_to_the_last(fold_map):
    mapping = read_fold_map(fold_map)
    assert mapping["ao"] == mapping["aa"] == "aa" and mapping["ax-h"] == mapping["ax"] == "ah"
    assert mapping["vcl"] == mapping["bcl"] == mapping["sil"] == "sil" and mapping["q"] is None
    folded = fold_texts({"u": "h# ao q ax-h <unk> bcl"}, mapping)
    assert folded == {"u": "sil aa ah <unk> sil"}  # q deleted, <unk> kept


def test_fold_map_conflict_names_the_line(tmp_path):
    path = tmp_path / "map"
    path.write_text("ao ao aa\nx ao ah\n")
    with pytest.raises(ValueError, match=r"map:2: 'ao' folds to 'ah' here but to 'aa' before"):
        read_fold_map(path)


def test_timit_map_folds_to_39_phones(project_root):
    mapping = read_fold_map(project_root / "egs2/timit/asr1/conf/phones.60-48-39.map")
    assert len({t for t in mapping.values() if t}) == 39 and mapping["q"] is None
