import torch

from espnet_ext.ctc_greedy import collapse, greedy_batch


def test_collapse_merges_repeats_then_drops_blanks():
    ids = torch.tensor([0, 3, 3, 0, 3, 5, 5, 0, 0, 7, 9, 9])
    assert collapse(ids, len(ids)) == [3, 3, 5, 7, 9]
    assert collapse(ids, 4) == [3]  # only the first 4 frames are valid
    assert collapse(ids, 0) == []


class FakeModel(torch.nn.Module):
    """encode() returns the input as logits; frames beyond the length are padding."""

    blank_id = 0

    def encode(self, speech, lengths):
        return speech, lengths

    class ctc:  # noqa: N801
        @staticmethod
        def log_softmax(x):
            return torch.log_softmax(x, dim=-1)


def test_greedy_batch_respects_lengths_and_scores():
    logits = torch.full((2, 4, 3), -10.0)
    path = [[1, 1, 0, 2], [2, 0, 2, 1]]
    for b, p in enumerate(path):
        for t, k in enumerate(p):
            logits[b, t, k] = 10.0
    out = greedy_batch(FakeModel(), logits, torch.tensor([4, 3]))
    assert [labels for labels, _ in out] == [[1, 2], [2, 2]]
    logp = torch.log_softmax(logits, -1).max(-1).values
    assert abs(out[1][1] - float(logp[1, :3].sum())) < 1e-5
