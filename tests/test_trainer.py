"""The trainer: pairs from real PRM800K rows, the split by problem, a few training steps on a tiny model
(loss down, bit-exact save/reload, resume = uninterrupted), the MCTS reward rows, and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from tests.conftest import SHARED, make_tiny_srm_model
from trainer import data as D
from trainer.metrics import auroc, pairwise_accuracy
from trainer.reward_tuning import collect, done_problems, rewards_from_search

PRM = SHARED / "data" / "prm800k"
SAMPLES = PRM / "samples" / "samples_prm800k.jsonl"
TEST_PARQUET = PRM / "stepwise_critic" / "phase1_test.stepwise-critic.parquet"
@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and do not stall when other work shares the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


needs_shared = pytest.mark.skipif(not SAMPLES.is_file() or not TEST_PARQUET.is_file(),
                                  reason=f"PRM800K samples not found under {PRM} "
                                         "(../shared is absent in a user's clone)")


# -- data ---------------------------------------------------------------------------------------------

@needs_shared
def test_prm800k_jsonl_records_follow_the_chosen_path():
    records, stats = D.read_prm800k_jsonl(SAMPLES)
    first = [r for r in records if r.group.startswith("Three pencils")]
    # Step 2's five completions are all rated -1; the human completion continues the path.
    assert [r.label for r in first[1:6]] == [0.0] * 5
    assert first[6].context.endswith("We have $3p+e=1.24$ and $5p+e=1.82$.\n")
    assert first[0].context == D.render_context(first[0].group, [])
    assert stats.zero_dropped == 3 and stats.unrated == 0
    json.dumps([r.to_dict() for r in records])  # plain, JSON-serialisable records


@needs_shared
@pytest.mark.parametrize("zero_as", D.ZERO_AS)
def test_parquet_reproduces_the_official_jsonl_rows(tmp_path, zero_as):
    """The stepwise-critic rows of a phase-1 problem are exactly what the raw record gives."""
    parquet = {(r.context, r.step, r.label) for r in D.load_records(TEST_PARQUET, zero_as)[0]}
    lines = [line for line in SAMPLES.read_text().splitlines() if json.loads(line)["generation"] is None]
    one = tmp_path / "one.jsonl"
    for line in lines[:1] + lines[2:3]:  # the pencil problem and another phase-1 test problem
        one.write_text(line + "\n")
        raw = {(r.context, r.step, r.label) for r in D.load_records(one, zero_as)[0]}
        assert raw and raw <= parquet


@needs_shared
def test_pairs_from_real_rows():
    records, stats = D.load_records(TEST_PARQUET)
    assert stats.format == "prm800k-stepwise-parquet" and stats.unrated == 367 and stats.zero_dropped == 867
    pairs = D.pairs_from_rewards(records)
    assert len(pairs) == 1503
    by_key = {(r.group, r.context, r.step): r.label for r in records}
    for p in pairs[:200]:
        assert by_key[(p.group, p.context, p.positive)] - by_key[(p.group, p.context, p.negative)] == p.margin > 0
        assert p.positive != p.negative
    # 0 as negative adds (1, 0) pairs; 0 as positive adds (0, -1) pairs.
    assert len(D.pairs_from_rewards(D.load_records(TEST_PARQUET, "negative")[0])) == 2381
    assert len(D.pairs_from_rewards(D.load_records(TEST_PARQUET, "positive")[0])) == 2261


@needs_shared
def test_split_never_puts_one_problem_on_both_sides():
    records, _ = D.load_records(TEST_PARQUET)
    pairs = D.pairs_from_rewards(records)
    dev = D.dev_groups([r.group for r in records], 0.2, seed=3)
    assert len(dev) == round(len({r.group for r in records}) * 0.2)
    for items in (records, pairs):
        train, held = D.split_by_group(items, dev)
        assert train and held and not {x.group for x in train} & {x.group for x in held}
    assert D.dev_groups([r.group for r in records], 0.2, seed=3) == dev  # deterministic
    assert D.dev_groups([r.group for r in records], 0.2, seed=4) != dev
    shuffled = [r.group for r in records]
    random.Random(0).shuffle(shuffled)
    assert D.dev_groups(shuffled, 0.2, seed=3) == dev  # by problem, never by row order


def test_prm800k_contexts_are_laid_out_as_gsm8k_states_read():
    from srm_tasks.gsm8k import GSM8KTask

    task = GSM8KTask()
    state = {**task.initial_state({"question": "What is 2 + 3?", "answer": "5"}), "steps": ["2 + 3 = 5."]}
    assert D.render_context("What is 2 + 3?", ["2 + 3 = 5."]) == task.describe(state)


def test_pairs_from_rewards_uses_siblings_and_epsilon():
    rows = [{"state": "s", "action": "a", "reward": 0.9, "source": "x", "problem_id": "p1"},
            {"state": "s", "action": "b", "reward": 0.5, "source": "x", "problem_id": "p1"},
            {"state": "s", "action": "c", "reward": 0.45, "source": "x", "problem_id": "p1"},
            {"state": "t", "action": "d", "reward": 0.0, "source": "x", "problem_id": "p1"}]
    pairs = D.pairs_from_rewards(rows, epsilon=0.1)
    assert {(p.positive, p.negative) for p in pairs} == {("a", "b"), ("a", "c")}
    assert pairs[0].margin == pytest.approx(0.4)
    assert len(D.pairs_from_rewards(rows, epsilon=0.0)) == 3


def test_metrics():
    assert pairwise_accuracy([1, 2, 3], [0, 2, 4]) == pytest.approx(0.5)
    scores, labels = [0.1, 0.4, 0.35, 0.8, 0.4], [0, 0, 1, 1, 1]
    brute = sum((s1 > s0) + 0.5 * (s1 == s0) for s1, y1 in zip(scores, labels) if y1
                for s0, y0 in zip(scores, labels) if not y0) / 6
    assert auroc(scores, labels) == pytest.approx(brute)
    assert auroc([0.1, 0.2], [1, 1]) is None and auroc([0.1, 0.2], [0.5, 1]) is None


def test_bad_data_files_name_the_file_and_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(D.DataError, match=r"empty\.jsonl: empty file"):
        D.load_records(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"state": "s", "action": "a", "reward": 1, "source": "x"}\n{"state": oops}\n')
    with pytest.raises(D.DataError, match=r"bad\.jsonl:2: not valid JSON"):
        D.load_records(bad)
    out_of_range = tmp_path / "range.jsonl"
    out_of_range.write_text('{"state": "s", "action": "a", "reward": 1.5, "source": "x"}\n')
    with pytest.raises(D.DataError, match=r"range\.jsonl:1: reward must be in \[0, 1\]"):
        D.load_records(out_of_range)
    with pytest.raises(D.DataError, match="no such file"):
        D.load_records(tmp_path / "missing.jsonl")
    parquet = tmp_path / "x.parquet"
    parquet.write_bytes(b"PAR1 broken")
    with pytest.raises(D.DataError, match=r"x\.parquet: not a stepwise-critic parquet file"):
        D.load_records(parquet)


# -- training on a tiny model -------------------------------------------------------------------------

def _prm800k_line(i: int) -> str:
    """A PRM800K record whose good steps say "right" and bad ones "wrong" (separable)."""
    steps = [{"completions": [{"text": f"so {i} plus {j} is {i + j}, which is right", "rating": 1},
                              {"text": f"so {i} plus {j} is {i + j + 1}, which is wrong", "rating": -1}],
              "human_completion": None, "chosen_completion": 0} for j in range(2)]
    return json.dumps({"question": {"problem": f"Add {i} and then {i + 1}."}, "label": {"steps": steps}})


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, encoder_tokenizer_dir) -> Path:
    from transformers import AutoTokenizer

    from srm_agent.srm import SpeculativeRewardModel

    tokenizer = AutoTokenizer.from_pretrained(encoder_tokenizer_dir)
    return SpeculativeRewardModel(make_tiny_srm_model(), tokenizer, device="cpu").save_pretrained(
        tmp_path_factory.mktemp("base") / "tiny")


@pytest.fixture()
def separable(tmp_path) -> Path:
    path = tmp_path / "prm.jsonl"
    path.write_text("".join(_prm800k_line(i) + "\n" for i in range(12)))
    return path


def _argv(data: Path, base: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--base", str(base), "--out", str(out), "--max-length", "64", "--lr", "2e-2",
            "--batch-size", "4", "--eval-batch-size", "16", *extra]


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _train_loss(model, tokenizer, pairs) -> float:
    from trainer.loop import evaluate

    return evaluate(model, tokenizer, pairs, [], loss="pairwise", max_length=64, batch_size=16)["loss"]


def test_training_lowers_the_loss_and_saves_bit_exactly(separable, tiny_base, tmp_path):
    from srm_agent.srm import SpeculativeRewardModel
    from trainer import train_srm

    pairs = D.pairs_from_rewards(D.load_records(separable)[0])
    base = SpeculativeRewardModel.from_pretrained(tiny_base, device="cpu")
    before = _train_loss(base.model, base.tokenizer, pairs)
    out = tmp_path / "srm"
    result = train_srm.run(train_srm.parse(_argv(separable, tiny_base, out, "--epochs", "6", "--dev-fraction", "0")))
    assert _train_loss(result.model, base.tokenizer, pairs) < before / 2
    assert result.steps == 6 * 6 and len(result.history) == 6  # 24 training pairs, 6 batches of 4 per epoch
    loaded = SpeculativeRewardModel.from_pretrained(out, device="cpu")
    assert loaded.head_trained
    saved, trained = _state(loaded.model), _state(result.model)
    assert saved.keys() == trained.keys() and all(torch.equal(saved[k], trained[k]) for k in saved)
    card = (out / "README.md").read_text()
    assert "python -m trainer.train_srm --data" in card and str(tiny_base) in card
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert metrics["steps"] == 36 and metrics["data"][0]["records"] == 48
    assert not (tmp_path / "srm.state").exists()  # training checkpoints go once the model is out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prm.jsonl", "srm"]  # no temporary folders left


def test_frozen_embeddings_stay_put_and_a_compact_checkpoint_reloads(separable, tiny_base, tmp_path):
    from safetensors.torch import load_file

    from srm_agent.srm import SpeculativeRewardModel
    from trainer import train_srm

    base = _state(SpeculativeRewardModel.from_pretrained(tiny_base, device="cpu").model)
    out = tmp_path / "srm"
    result = train_srm.run(train_srm.parse(_argv(separable, tiny_base, out, "--epochs", "2", "--dev-fraction", "0",
                                                 "--freeze-embeddings", "--save-delta")))
    trained = _state(result.model)
    assert all(torch.equal(trained[k], base[k]) for k in trained if ".embeddings." in k)
    assert not torch.equal(trained["classifier.weight"], base["classifier.weight"])
    stored = load_file(out / "model.safetensors")
    assert stored and not any(".embeddings." in k for k in stored) and "classifier.weight" in stored
    loaded = _state(SpeculativeRewardModel.from_pretrained(out, device="cpu").model)
    assert all(torch.equal(loaded[k], trained[k]) for k in trained)
    config = json.loads((out / "config.json").read_text())
    assert config["srm_max_length"] == 64 and config["srm_base"] == str(tiny_base.resolve())
    # fine-tuning a compact checkpoint stores the changes against the same encoder, not against the checkpoint
    again = tmp_path / "srm2"
    train_srm.run(train_srm.parse(_argv(separable, out, again, "--epochs", "1", "--dev-fraction", "0",
                                        "--freeze-embeddings", "--save-delta")))
    assert json.loads((again / "config.json").read_text())["srm_base"] == str(tiny_base.resolve())
    assert SpeculativeRewardModel.from_pretrained(again, device="cpu").head_trained


def test_a_checkpoint_keeps_its_dev_pairs_and_reproduces_its_dev_metric(separable, tiny_base, tmp_path):
    from trainer import train_srm
    from trainer.export import DEV_PAIRS, dev_pair_accuracy

    out = tmp_path / "srm"
    result = train_srm.run(train_srm.parse(_argv(separable, tiny_base, out, "--epochs", "2", "--dev-fraction", "0.3",
                                                 "--freeze-embeddings", "--save-delta")))
    kept = [json.loads(line) for line in (out / DEV_PAIRS).read_text().splitlines()]
    assert kept and all(set(p) == {"context", "positive", "negative"} for p in kept)
    accuracy, pairs = dev_pair_accuracy(out)
    assert pairs == len(kept) == result.best["dev_pairs"] and accuracy == result.best["dev_pair_acc"]
    (out / DEV_PAIRS).unlink()
    with pytest.raises(FileNotFoundError, match="keeps no dev pairs"):
        dev_pair_accuracy(out)


def test_resume_mid_epoch_reproduces_an_uninterrupted_run(separable, tiny_base, tmp_path, monkeypatch):
    from trainer import state, train_srm

    extra = ("--epochs", "2", "--grad-accum", "2", "--save-every", "1", "--dev-fraction", "0.25", "--patience", "0")
    whole = train_srm.run(train_srm.parse(_argv(separable, tiny_base, tmp_path / "a", *extra)))
    assert whole.best is not None and whole.history[0]["dev_pair_acc"] is not None

    real_save, saves = state.save_checkpoint, []

    def killed_after_two(*args, **kwargs):
        path = real_save(*args, **kwargs)
        saves.append(path)
        if len(saves) == 2:  # step 2 of 4 in the first epoch: mid-epoch
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(state, "save_checkpoint", killed_after_two)
    argv = _argv(separable, tiny_base, tmp_path / "b", *extra)
    with pytest.raises(KeyboardInterrupt):
        train_srm.run(train_srm.parse(argv))
    monkeypatch.setattr(state, "save_checkpoint", real_save)
    assert not (tmp_path / "b").exists()
    assert [p.name for p in state.checkpoints(tmp_path / "b.state")] == ["step-00000002"]
    with pytest.raises(FileExistsError, match="--resume"):
        train_srm.run(train_srm.parse(argv))
    resumed = train_srm.run(train_srm.parse([*argv, "--resume"]))
    assert resumed.resumed_from.endswith("step-00000002")
    a, b = _state(whole.model), _state(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["dev_pair_acc"] for r in resumed.history] == [r["dev_pair_acc"] for r in whole.history]


def test_a_killed_run_leaves_no_half_written_checkpoint(separable, tiny_base, tmp_path, monkeypatch):
    from trainer import export, state, train_srm

    argv = _argv(separable, tiny_base, tmp_path / "srm", "--epochs", "1", "--save-every", "2", "--dev-fraction", "0")
    real_write = state.write_json

    def dies_writing_state(path, data):
        if path.name == "state.json" and data["step"] == 4:
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(state, "write_json", dies_writing_state)
    with pytest.raises(KeyboardInterrupt):
        train_srm.run(train_srm.parse(argv))
    states = tmp_path / "srm.state"
    assert [p.name for p in states.iterdir()] == ["step-00000002"]  # the one being written is gone
    assert {p.name for p in (states / "step-00000002").iterdir()} >= {"model.safetensors", "state.json",
                                                                     "optimizer.safetensors"}
    monkeypatch.setattr(state, "write_json", real_write)

    def dies_writing_the_card(info):
        raise KeyboardInterrupt

    real_card = export.model_card
    monkeypatch.setattr(export, "model_card", dies_writing_the_card)
    with pytest.raises(KeyboardInterrupt):
        train_srm.run(train_srm.parse([*argv, "--resume"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prm.jsonl", "srm.state"]  # no out, no temp folder
    monkeypatch.setattr(export, "model_card", real_card)
    train_srm.run(train_srm.parse([*argv, "--resume"]))  # training is done: it only writes the checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prm.jsonl", "srm"]


def test_stage_two_compares_objectives(tiny_base, tmp_path):
    from trainer import train_srm_plus

    rows = []
    for p in range(10):
        for s in range(2):
            state = f"problem {p} state {s}"
            rows += [{"state": state, "action": f"good move {s}", "reward": 0.9, "source": "t", "problem_id": f"p{p}"},
                     {"state": state, "action": f"bad move {s}", "reward": 0.1, "source": "t", "problem_id": f"p{p}"},
                     {"state": state, "action": f"fair move {s}", "reward": 0.5, "source": "t", "problem_id": f"p{p}"}]
    data = tmp_path / "rewards.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "plus"
    argv = ["--init", str(tiny_base), "--data", str(data), "--out", str(out), "--compare", "--epochs", "1",
            "--max-length", "32", "--lr", "3e-3", "--batch-size", "8", "--dev-fraction", "0.3"]
    result = train_srm_plus.run(train_srm_plus.parse(argv))
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert set(metrics["comparison"]) == {"pairwise", "regression"} and metrics["objective"] in metrics["comparison"]
    assert metrics["split"]["dev_groups"] == 3 and metrics["split"]["train_pairs"] == 7 * 2 * 3
    assert "Objective comparison" in (out / "README.md").read_text()
    assert result.best["dev_pair_acc"] is not None


# -- bad input on the command line --------------------------------------------------------------------

def test_bad_inputs_give_one_line_errors(tmp_path, tiny_base, separable, capsys):
    from trainer import train_srm

    def error(*argv: str) -> str:
        assert train_srm.main(list(argv)) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err and err.startswith("error: ")
        return err

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "empty.jsonl: empty file" in error(*_argv(empty, tiny_base, tmp_path / "o"))
    malformed = tmp_path / "bad.jsonl"
    malformed.write_text(_prm800k_line(0) + "\n{not json\n")
    assert "bad.jsonl:2: not valid JSON" in error(*_argv(malformed, tiny_base, tmp_path / "o"))
    same = tmp_path / "same.jsonl"
    same.write_text(json.dumps({"question": {"problem": "p"}, "label": {"steps": [
        {"completions": [{"text": "a", "rating": 1}, {"text": "b", "rating": 1}], "chosen_completion": 0}]}}) + "\n")
    assert "no valid pairs" in error(*_argv(same, tiny_base, tmp_path / "o"))
    not_a_model = tmp_path / "folder"
    not_a_model.mkdir()
    assert "no config.json" in error(*_argv(separable, not_a_model, tmp_path / "o"))
    assert "no such file or directory" in error(*_argv(separable, tmp_path / "nowhere", tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("module", ["train_srm", "train_srm_plus", "reward_tuning"])
def test_every_command_has_help(module, capsys):
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"trainer.{module}").main(["--help"])
    assert exit_info.value.code == 0 and "usage: python -m trainer." in capsys.readouterr().out


# -- RewardTuning rows from MCTS ----------------------------------------------------------------------

def _node(i, parent, action, *, visits, value, expanded=False, state=""):
    return {"id": i, "parent": parent, "action": action, "depth": 0 if parent is None else 1, "state": state,
            "decision": None, "visits": visits, "value_sum": value * visits, "expanded": expanded, "terminal": False,
            "solved": False, "invalid": None}


def test_rewards_from_search_keeps_visited_children_of_expanded_nodes():
    nodes = [_node(0, None, None, visits=3, value=0.5, expanded=True, state="root"),
             _node(1, 0, "good", visits=2, value=0.75, expanded=True, state="after good"),
             _node(2, 0, "bad", visits=1, value=0.0, state="after bad"),
             _node(3, 0, "rejected", visits=0, value=0.0),
             _node(4, 1, "deeper", visits=1, value=1.0000001, state="end"),
             _node(5, 2, "child of unexpanded", visits=1, value=1.0)]
    rows = rewards_from_search(nodes, "mcts:test")
    assert rows == [{"state": "root", "action": "good", "reward": 0.75, "source": "mcts:test", "visits": 2},
                    {"state": "root", "action": "bad", "reward": 0.0, "source": "mcts:test", "visits": 1},
                    {"state": "after good", "action": "deeper", "reward": 1.0, "source": "mcts:test", "visits": 1}]


def test_collect_writes_the_schema_and_resumes(tiny_generator, tmp_path):
    from srm_tasks.toy import ReachNumber

    problems = [{"start": 1, "target": 5}, {"start": 2, "target": 7}]
    out = tmp_path / "rewards.jsonl"
    kwargs = dict(generator=tiny_generator, srm=None, out=out, source="mcts:toy:none",
                  problem_id=lambda p: f"{p['start']}-{p['target']}", depth=lambda p: 4,
                  search={"k": 2, "mcts_iters": 3, "seed": 0})
    counts = collect(ReachNumber(), problems[:1], **kwargs)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert counts["rows"] == len(rows) > 0
    for row in rows:
        assert set(row) == {"state", "action", "reward", "source", "visits", "problem_id"}
        assert 0.0 <= row["reward"] <= 1.0 and row["visits"] >= 1 and row["problem_id"] == "1-5"
    with pytest.raises(FileExistsError, match="--resume"):
        collect(ReachNumber(), problems, **kwargs)
    counts = collect(ReachNumber(), problems, resume=True, **kwargs)
    assert counts["skipped"] == 1 and counts["problems"] == 1
    assert done_problems(out) == {"1-5", "2-7"}
    # A torn last line (killed mid-write) drops that problem, which is then run again.
    with out.open("a") as f:
        f.write('{"state": "torn')
    assert done_problems(out) == {"1-5"}
    assert D.load_records(out)[1].format == "rewards"


BW_SPLIT = SHARED / "data" / "blocksworld" / "llm-reasoners" / "data" / "split_v1" / "split_v1_step_4_data.json"


@pytest.mark.skipif(not BW_SPLIT.is_file(), reason=f"{BW_SPLIT} not found (../shared is absent in a user's clone)")
def test_blocksworld_training_problems_exclude_evaluation_ones_up_to_renaming():
    from srm_tasks.blocksworld import canonical_key, load_split
    from srm_tasks import get_spec
    from trainer.reward_tuning import training_problems

    banned = {canonical_key(p) for p in load_split(BW_SPLIT)}
    options = {"data": None, "seed": 0, "blocks": (3, 4), "steps": None}
    problems, problem_id, excluded = training_problems(get_spec("blocksworld"), 8, options, exclude=[BW_SPLIT])
    assert len(problems) == 8 and excluded > 0  # some generated problems were evaluation problems
    assert not {canonical_key(p) for p in problems} & banned
    assert len({problem_id(p) for p in problems}) == 8
