"""``python -m benchmarks concat`` on the Mandarin part of the mini corpus, once: both ways of
joining give the same dump, the project's loader reads every dumped utterance, and stage 2's own
``wav.scp`` only as files (ESPnet's ``sound`` loader opens no commands)."""

import contextlib
import io
import re

from benchmarks import concat

STEP = re.compile(r"^(stage 2|stage 3|load dump|load stage 2) +([\d.]+) \(([\d.]+)\) +([\d.]+) \(([\d.]+)\)$", re.M)


def test_one_run_over_the_mandarin_utterances(tmp_path):
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        status = concat.main(["--langs", "zh", "--repeats", "1", "--workdir", str(tmp_path), "--keep"])
    out = sink.getvalue()
    assert status == 0, out
    assert [m[0] for m in STEP.findall(out)] == ["stage 2", "stage 3", "load dump", "load stage 2"], out
    assert all(float(m[1]) > 0 and float(m[3]) > 0 for m in STEP.findall(out))
    groups = len((tmp_path / "files0/data/wav.scp").read_text().splitlines())
    assert groups == 18  # 6 speakers x 15 utterances, 6 at a time: 6, 6, 3
    assert (
        f"files: {groups} utterances loaded from the dump (0 failed), {groups} from stage 2's wav.scp (0 failed)" in out
    )
    assert (
        f"pipes: {groups} utterances loaded from the dump (0 failed), 0 from stage 2's wav.scp ({groups} failed)" in out
    )
    assert re.search(r"files: .* stage 2 wrote [1-9][\d.]* MB of audio", out)
    assert re.search(r"pipes: .* stage 2 wrote 0.0 MB of audio", out)
