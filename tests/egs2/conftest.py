"""Fixtures for the corpus recipe tests: copies of egs2/<corpus>/asr1 run on mini corpora.

``corpus_recipe(corpus, dest, db_sh)`` makes ``dest`` a recipe directory whose files link to
``egs2/<corpus>/asr1`` (outputs stay in ``dest``) with its own ``db.sh`` text;
``run_recipe(recipe, *args, script="./run.sh", check=True)`` runs a script there with the
project's venv and ``ESPNET_EXT_ROOT`` (raising with the stderr tail when ``check`` and it fails).
``tiny_checkpoint`` is a random tiny wav2vec 2.0 backbone saved in this project's format: the
config dry runs put it where a config's ``frontend_conf.path`` points (no model hub here).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

RECIPE_FILES = ("asr.sh", "path.sh", "cmd.sh", "run.sh", "conf", "local")


@pytest.fixture(scope="session")
def corpus_recipe(project_root):
    def make(corpus: str, dest: Path, db_sh: str) -> Path:
        source = project_root / "egs2" / corpus / "asr1"
        dest.mkdir(parents=True)
        for name in RECIPE_FILES:
            (dest / name).symlink_to(source / name)
        (dest / "db.sh").write_text(db_sh)
        return dest

    return make


@pytest.fixture(scope="session")
def run_recipe(project_root, venv_env):
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))

    def run(recipe: Path, *args: str, script: str = "./run.sh", check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([script, *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1800)
        if check and result.returncode != 0:
            raise AssertionError(f"{script} {' '.join(args)} failed:\n{result.stderr[-5000:]}")
        return result

    return run


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from espnet_ext.wav2vec2.importers import save_backbone
    from espnet_ext.wav2vec2.model import wav2vec2_model
    from espnet_ext.wav2vec2.presets import preset_config

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_backbone(wav2vec2_model(preset_config("tiny")), preset_config("tiny"), path)
    return path
