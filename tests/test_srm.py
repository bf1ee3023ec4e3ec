"""The SRM scorer on a tiny encoder built from a config, and once on the real embedded MiniLM."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import save_file

from srm_agent import CheckpointError, SpeculativeRewardModel

STATE = "Initial: the red block is on the blue block. Goal: the blue block is on the red block."
ACTIONS = ["unstack the red block from on top of the blue block", "pick up the blue block", "put down the red block"]


def test_batched_scores_equal_one_by_one_scores(tiny_srm):
    pairs = [(STATE * (i % 3 + 1), a) for i, a in enumerate(ACTIONS * 3)]
    batched = tiny_srm.score_pairs(pairs)
    tiny_srm.batch_size = 1
    alone = tiny_srm.score_pairs(pairs)
    assert batched == pytest.approx(alone, abs=1e-5)
    assert len(set(round(x, 6) for x in batched)) > 1  # the scores depend on the input


def test_score_is_aligned_with_actions(tiny_srm):
    scores = tiny_srm.score(STATE, ACTIONS)
    assert scores == pytest.approx([tiny_srm.score(STATE, [a])[0] for a in ACTIONS], abs=1e-5)


def test_long_state_keeps_its_start_and_end_and_warns_once(tiny_srm, caplog):
    goal, tail = "Goal: the blue block is on the red block.", " Now: pick up the red block."
    long_state = goal + " filler words" * 400 + tail
    with caplog.at_level(logging.WARNING, logger="srm_agent.srm"):
        long_score = tiny_srm.score(long_state, ["stack the red block"])[0]
        tiny_srm.score(long_state, ["stack the red block"])
    assert sum("lost its middle" in r.message for r in caplog.records) == 1
    # The kept window is the state's first and last tokens: the same as scoring just those.
    tok = tiny_srm.tokenizer
    room = tiny_srm.max_length - 3 - len(tok("stack the red block", add_special_tokens=False)["input_ids"])
    ids = tok(long_state, add_special_tokens=False)["input_ids"]
    kept = ids[: room // 2] + ids[len(ids) - (room - room // 2):]
    assert tok.decode(kept).startswith(tok.decode(tok(goal, add_special_tokens=False)["input_ids"]))
    assert long_score == pytest.approx(tiny_srm.score(tok.decode(kept), ["stack the red block"])[0], abs=1e-5)


def test_trainer_and_scorer_encode_alike(tiny_srm):
    from trainer.loop import encode

    pairs = [(STATE, a) for a in ACTIONS] + [("x " * 900, "stack " * 400)]
    states, actions = [s for s, _ in pairs], [a for _, a in pairs]
    enc = encode(tiny_srm.tokenizer, states, actions, tiny_srm.max_length)
    with torch.no_grad():
        trained_view = tiny_srm.model(**enc).logits[:, 0].tolist()
    assert trained_view == pytest.approx(tiny_srm.score_pairs(pairs), abs=1e-5)
    assert enc["input_ids"].shape[1] == tiny_srm.max_length  # the long pair was cut to the window


def test_a_checkpoint_is_served_with_its_training_window(tiny_srm, tmp_path):
    from srm_agent.encoding import WINDOW_KEY

    tiny_srm.model.config.update({WINDOW_KEY: 24})
    tiny_srm.save_pretrained(tmp_path / "w24")
    assert SpeculativeRewardModel.from_pretrained(tmp_path / "w24", device="cpu").max_length == 24
    assert SpeculativeRewardModel.from_pretrained(tmp_path / "w24", device="cpu", max_length=16).max_length == 16


def test_huge_action_is_cut_and_still_scored(tiny_srm, caplog):
    with caplog.at_level(logging.WARNING, logger="srm_agent.srm"):
        scores = tiny_srm.score(STATE, ["stack " * 5000])
    assert len(scores) == 1 and scores[0] == scores[0]
    assert any("action longer than" in r.message for r in caplog.records)


def test_save_and_reload_gives_the_same_scores_and_fingerprint(tiny_srm, tiny_srm_dir):
    again = SpeculativeRewardModel.from_pretrained(tiny_srm_dir, device="cpu")
    assert again.head_trained
    assert again.score(STATE, ACTIONS) == pytest.approx(tiny_srm.score(STATE, ACTIONS), abs=1e-6)
    assert again.fingerprint == tiny_srm.fingerprint
    assert sorted(p.name for p in tiny_srm_dir.iterdir() if p.suffix == ".safetensors") == ["model.safetensors"]
    assert not list(tiny_srm_dir.parent.glob(".tiny-srm.*"))  # no temp folder left behind


def test_fingerprint_changes_with_the_weights(tiny_srm):
    before = tiny_srm.fingerprint
    with torch.no_grad():
        tiny_srm.model.classifier.bias.add_(0.5)
    assert tiny_srm.fingerprint == before  # cached until refreshed
    assert tiny_srm.refresh_fingerprint() != before


def test_not_a_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        SpeculativeRewardModel.from_pretrained(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointError, match="not a directory"):
        SpeculativeRewardModel.from_pretrained(tmp_path / "file.txt")
    with pytest.raises(CheckpointError, match="no config.json") as info:
        SpeculativeRewardModel.from_pretrained(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_pickle_weights_are_refused(tmp_path, tiny_srm_dir):
    (tmp_path / "config.json").write_text((tiny_srm_dir / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match="safetensors only"):
        SpeculativeRewardModel.from_pretrained(tmp_path)


def test_a_multi_output_classifier_is_refused(tiny_srm_dir):
    config = json.loads((tiny_srm_dir / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    config["label2id"] = {"a": 0, "b": 1, "c": 2}
    (tiny_srm_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="3 outputs"):
        SpeculativeRewardModel.from_pretrained(tiny_srm_dir)


def test_weights_of_another_model_are_refused(tiny_srm_dir):
    save_file({"unrelated": torch.zeros(1)}, tiny_srm_dir / "model.safetensors")
    with pytest.raises(CheckpointError, match="encoder weights are missing"):
        SpeculativeRewardModel.from_pretrained(tiny_srm_dir)
    (tiny_srm_dir / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        SpeculativeRewardModel.from_pretrained(tiny_srm_dir)


@pytest.mark.slow
def test_embedded_minilm_backbone_scores_for_real(caplog):
    from srm_agent.embedded import embedded_srm_backbone

    with caplog.at_level(logging.WARNING, logger="srm_agent.srm"):
        srm = SpeculativeRewardModel.from_pretrained(embedded_srm_backbone(), device="cpu")
    assert type(srm.model).__name__ == "BertForSequenceClassification"
    assert srm.model.config.num_hidden_layers == 6 and srm.max_length == 512
    assert not srm.head_trained and any("newly initialised" in r.message for r in caplog.records)
    scores = srm.score(STATE, ACTIONS)
    assert len(scores) == 3 and len(set(scores)) == 3
    # The untrained head is seeded: two loads give one fingerprint, so cached scores stay valid.
    assert SpeculativeRewardModel.from_pretrained(embedded_srm_backbone(), device="cpu").fingerprint == srm.fingerprint


@pytest.mark.slow
def test_default_srm_is_the_shipped_trained_checkpoint():
    from srm_agent import default_srm
    from srm_agent.embedded import DEFAULT_CHECKPOINT, shipped_checkpoint

    path = shipped_checkpoint()
    assert path is not None, f"srm_agent/checkpoints/{DEFAULT_CHECKPOINT} is missing: run python -m trainer.recipes"
    card = (path / "README.md").read_text()
    assert "## Ranking quality" in card and "exact" in card.lower()
    srm = default_srm(device="cpu")
    assert srm.head_trained
    assert next(srm.model.parameters()).dtype == torch.float32  # fp16 on disk, fp32 for CPU compute
    scores = srm.score(STATE, ACTIONS)
    assert len(scores) == 3 and all(s == s for s in scores)
    # the files that ship reproduce the dev metric their card reports (fp16 weights: within a pair or two)
    from trainer.export import dev_pair_accuracy

    best = json.loads((path / "training_metrics.json").read_text())["best"]
    accuracy, pairs = dev_pair_accuracy(path)
    assert pairs == best["dev_pairs"] and abs(accuracy - best["dev_pair_acc"]) <= 2 / pairs
