import subprocess

import numpy as np
import pytest
import soundfile

from espnet_ext.data.kaldi_files import read_map
from espnet_ext.data.perturb import speed_perturb, speed_pipe


def make_dir(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    soundfile.write(tmp_path / "a.wav", (0.1 * np.sin(np.arange(16000) / 3)).astype(np.float32), 16000)
    (d / "wav.scp").write_text(f"s1-a {tmp_path}/a.wav\ns1-b cat {tmp_path}/a.wav |\n")
    (d / "text").write_text("s1-a hello\ns1-b world\n")
    (d / "utt2spk").write_text("s1-a s1\ns1-b s1\n")
    (d / "spk2utt").write_text("s1 s1-a s1-b\n")
    return d


def test_ids_and_pipes(tmp_path):
    src = make_dir(tmp_path)
    n = speed_perturb(src, tmp_path / "sp", [0.9, 1.0, 1.1])
    assert n == 6
    wav = read_map(tmp_path / "sp" / "wav.scp")
    assert wav["s1-a"] == f"{tmp_path}/a.wav"
    assert wav["sp0.9-s1-a"] == f"sox {tmp_path}/a.wav -t wav - speed 0.9 |"
    assert wav["sp1.1-s1-b"] == f"cat {tmp_path}/a.wav | sox -t wav - -t wav - speed 1.1 |"
    assert read_map(tmp_path / "sp" / "utt2spk")["sp0.9-s1-b"] == "sp0.9-s1"
    assert read_map(tmp_path / "sp" / "text")["sp1.1-s1-a"] == "hello"


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_pipe_changes_duration_by_the_factor(tmp_path, factor):
    make_dir(tmp_path)
    for entry in (f"{tmp_path}/a.wav", f"cat {tmp_path}/a.wav |"):
        cmd = speed_pipe(entry, factor) + f" cat > {tmp_path}/out.wav"
        subprocess.run(["bash", "-c", cmd], check=True)
        audio, fs = soundfile.read(tmp_path / "out.wav")
        assert fs == 16000
        assert abs(len(audio) - 16000 / factor) <= 2


def test_bad_factor(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        speed_perturb(make_dir(tmp_path), tmp_path / "sp", [0.0])
