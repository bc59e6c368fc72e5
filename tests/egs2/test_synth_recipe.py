"""egs2/synth: stage 1 generates a tiny corpus and writes a Kaldi data dir per set; a
second run reuses the corpus. (The whole chain at a tiny size is a later test.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not all(shutil.which(c) for c in ("espeak-ng", "flite", "sox")) or not Path("/usr/share/games/fortunes").is_dir(),
    reason="espeak-ng, flite, sox and Debian's fortunes are installed by `make install` (as root)",
)

SETS = ("unlabeled", "train", "dev", "test_seen", "test_unseen", "test_other")
TINY = ["--n_unlabeled", "6", "--n_train", "24", "--n_dev", "3", "--n_test", "3", "--subset_seconds", "8,30"]


def _stage1(recipe: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["./run.sh", "--stop_stage", "1", "--local_data_opts", " ".join(TINY)],
        cwd=recipe,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _ids(path: Path) -> list[str]:
    return [line.split(maxsplit=1)[0] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("kind", ["asr1", "ssl1"])
def test_stage1_writes_a_data_dir_per_set(kind, project_root, venv_env, tmp_path):
    src = project_root / "egs2" / "synth" / kind
    recipe = tmp_path / kind
    recipe.mkdir()
    for name in ("asr.sh" if kind == "asr1" else "ssl.sh", "path.sh", "cmd.sh", "db.sh", "run.sh", "conf", "local"):
        (recipe / name).symlink_to((src / name).resolve())
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root), SYNTH=str(tmp_path / "corpus"))
    _stage1(recipe, env)

    manifest = (tmp_path / "corpus" / "manifest.tsv").read_text().splitlines()[1:]
    for name, n in zip(SETS, (6, 24, 3, 3, 3, 3)):
        d = recipe / "data" / name
        ids = _ids(d / "wav.scp")
        assert len(ids) == n and ids == sorted(ids) == _ids(d / "text") == _ids(d / "utt2spk")
        assert (d / "spk2utt").is_file()
        for line in (d / "wav.scp").read_text().splitlines():
            assert Path(line.split()[1]).is_file()
    texts = {line.split("\t")[0]: line.split("\t")[10] for line in manifest}
    for line in (recipe / "data" / "test_other" / "text").read_text().splitlines():
        uttid, text = line.split(" ", 1)
        assert texts[uttid] == text
    small = _ids(recipe / "data" / "train_10min" / "wav.scp")
    large = _ids(recipe / "data" / "train_1h" / "wav.scp")
    assert set(small) < set(large) < set(_ids(recipe / "data" / "train" / "wav.scp"))

    stamp = (tmp_path / "corpus" / ".done").stat().st_mtime_ns
    second = _stage1(recipe, env)
    assert "reused" in second.stdout + second.stderr
    assert (tmp_path / "corpus" / ".done").stat().st_mtime_ns == stamp
