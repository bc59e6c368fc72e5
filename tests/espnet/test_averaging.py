import pytest
import torch

from espnet_ext.bin.average import main as average_main
from espnet_ext.espnet.averaging import (
    average_last,
    average_state_dicts,
    best_average_name,
    last_n_checkpoints,
    parse_last_n,
)


def save_epochs(tmp_path, epochs):
    """Epoch e: a linear layer filled with e, a BatchNorm whose counter is 100*e."""
    for e in epochs:
        model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(e))
        model[1].num_batches_tracked.fill_(100 * e)
        model[1].running_mean.fill_(e / 10)
        torch.save(model.state_dict(), tmp_path / f"{e}epoch.pth")


def test_average_of_last_n_epochs(tmp_path):
    save_epochs(tmp_path, [1, 2, 3, 4, 5])
    out = average_last(tmp_path, 3)
    assert out.name == "last3.ave.pth"
    state = torch.load(out, weights_only=True)
    assert torch.allclose(state["0.weight"], torch.full((2, 2), 4.0))  # mean of 3, 4, 5
    assert torch.allclose(state["1.running_mean"], torch.full((2,), 0.4))
    # integer buffers: the latest value, neither summed nor averaged
    assert state["1.num_batches_tracked"].dtype == torch.int64
    assert int(state["1.num_batches_tracked"]) == 500


def test_average_keeps_dtypes_and_order(tmp_path):
    a = {"w": torch.ones(3, dtype=torch.float16), "n": torch.tensor(3)}
    b = {"w": torch.zeros(3, dtype=torch.float16), "n": torch.tensor(4)}
    torch.save(a, tmp_path / "a.pth")
    torch.save(b, tmp_path / "b.pth")
    avg = average_state_dicts([tmp_path / "a.pth", tmp_path / "b.pth"])
    assert list(avg) == ["w", "n"]
    assert avg["w"].dtype == torch.float16 and torch.equal(avg["w"], torch.full((3,), 0.5, dtype=torch.float16))
    assert int(avg["n"]) == 4


def test_last_n_needs_consecutive_last_epochs(tmp_path):
    save_epochs(tmp_path, [1, 2, 4, 5])
    assert [p.name for p in last_n_checkpoints(tmp_path, 2)] == ["4epoch.pth", "5epoch.pth"]
    with pytest.raises(ValueError, match=r"3\.\.5epoch\.pth.*--keep_last_epochs 3"):
        last_n_checkpoints(tmp_path, 3)
    with pytest.raises(ValueError, match="needs 0..5epoch"):
        last_n_checkpoints(tmp_path, 6)


def test_mismatched_parameters_are_named(tmp_path):
    torch.save({"a": torch.ones(1)}, tmp_path / "1epoch.pth")
    torch.save({"b": torch.ones(1)}, tmp_path / "2epoch.pth")
    with pytest.raises(ValueError, match=r"parameters differ.*\['a', 'b'\]"):
        average_last(tmp_path, 2)


def test_empty_dir_and_names(tmp_path):
    with pytest.raises(ValueError, match="no {epoch}epoch.pth"):
        last_n_checkpoints(tmp_path, 1)
    assert parse_last_n("exp/x/last10.ave.pth") == 10
    assert parse_last_n("valid.acc.ave.pth") is None


def test_best_average_name_follows_the_criteria():
    # ESPnet's recipes decode valid.acc.ave.pth: right when the config judges by valid acc
    assert (
        best_average_name({"best_model_criterion": [["valid", "acc", "max"], ["valid", "loss", "min"]]})
        == "valid.acc.ave.pth"
    )
    # a CTC-only config (no accuracy): ESPnet writes only valid.loss.ave*.pth
    assert best_average_name({"best_model_criterion": [["valid", "loss", "min"]]}) == "valid.loss.ave.pth"
    assert (
        best_average_name({"best_model_criterion": [["train", "loss", "min"], ["valid", "cer_ctc", "min"]]})
        == "valid.cer_ctc.ave.pth"
    )
    assert best_average_name({"best_model_criterion": [["train", "loss", "min"]]}) == "train.loss.ave.pth"
    # no criterion in the config: ESPnet's default list, which has valid acc
    assert best_average_name({}) == "valid.acc.ave.pth"


def test_best_name_cli(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("best_model_criterion:\n-   - valid\n    - loss\n    - min\n", encoding="utf-8")
    assert average_main(["--best_name", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "valid.loss.ave.pth"
    assert average_main(["--best_name", str(tmp_path / "missing.yaml")]) == 1
