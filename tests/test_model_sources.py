"""Loading models: bad checkpoints and unreachable hub ids fail at once, in one line that says what to do."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from srm_agent import CheckpointError, SpeculativeRewardModel
from srm_agent.generators import TransformersGenerator

HUB_IDS = ["microsoft/deberta-v3-large", "PATH"]  # the second is the README's placeholder, taken literally
LOADERS = {"srm": SpeculativeRewardModel.from_pretrained, "generator": TransformersGenerator.from_pretrained}


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


@pytest.fixture()
def no_download(monkeypatch):
    """Any attempt of transformers to fetch a file fails the test: offline means not even trying."""
    import transformers

    def refuse(*args, **kwargs):
        pytest.fail(f"transformers was asked to load {args[:1]} although the hub is unreachable")

    for auto in ("AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification", "AutoModelForCausalLM"):
        monkeypatch.setattr(getattr(transformers, auto), "from_pretrained", refuse)


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("name", HUB_IDS)
def test_hub_id_with_hf_hub_offline_fails_without_trying(monkeypatch, no_download, loader, name, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache: the id is not there
    with pytest.raises(CheckpointError) as info:
        LOADERS[loader](name)
    text = one_line(info.value)
    assert text.startswith(f"{name}: ") and "HF_HUB_OFFLINE is set" in text and "local" in text


@pytest.mark.parametrize("loader", LOADERS)
def test_hub_id_fails_at_once_when_the_hub_does_not_answer(monkeypatch, no_download, loader, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.is_offline_mode", lambda: False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")  # nothing listens on port 1
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    from srm_agent.sources import hub_unreachable

    assert hub_unreachable() == "the model hub (127.0.0.1) does not answer"
    with pytest.raises(CheckpointError, match="does not answer; pass the path of a local"):
        LOADERS[loader]("microsoft/deberta-v3-large")


def test_a_cached_hub_id_loads_offline(monkeypatch, tmp_path, tiny_srm):
    """A hub id already in the Hugging Face cache is used without the hub."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny-srm" / "snapshots" / ("0" * 40)
    tiny_srm.save_pretrained(snapshot)
    (cache / "models--someone--tiny-srm" / "refs").mkdir()
    (cache / "models--someone--tiny-srm" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.is_offline_mode", lambda: True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    srm = SpeculativeRewardModel.from_pretrained("someone/tiny-srm", device="cpu")
    assert srm.fingerprint == tiny_srm.fingerprint


def test_a_wrong_shaped_head_names_the_tensor_and_both_shapes(tiny_srm_dir):
    weights = load_file(tiny_srm_dir / "model.safetensors")
    weights["classifier.weight"] = torch.zeros(1, 8)  # the encoder's hidden size is 16
    save_file(weights, tiny_srm_dir / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as info:
        SpeculativeRewardModel.from_pretrained(tiny_srm_dir)
    text = one_line(info.value)
    assert "classifier.weight" in text and "1x8" in text and "1x16" in text and str(tiny_srm_dir) in text


def test_remote_code_config_is_one_line_without_a_url(tiny_srm_dir):
    config = json.loads((tiny_srm_dir / "config.json").read_text())
    config.update(model_type="custom-srm", auto_map={"AutoConfig": "configuration_x.XConfig",
                                                     "AutoModelForSequenceClassification": "modeling_x.XModel"})
    (tiny_srm_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as info:
        SpeculativeRewardModel.from_pretrained(tiny_srm_dir)
    text = one_line(info.value)
    assert "auto_map" in text and "--trust-remote-code" in text and "http" not in text


class Payload:
    """Unpickling this would create a file: it must never happen."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_generator_refuses_pickle_weights_in_one_line(tmp_path, tiny_generator):
    folder = tmp_path / "pickled-lm"
    tiny_generator.model.save_pretrained(folder)
    tiny_generator.tokenizer.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "payload-ran"
    with (folder / "pytorch_model.bin").open("wb") as f:
        pickle.dump({"model.embed_tokens.weight": Payload(str(marker))}, f)
    with pytest.raises(CheckpointError) as info:
        TransformersGenerator.from_pretrained(folder)
    text = one_line(info.value)
    assert "safetensors only" in text and "weights_only" not in text
    assert not marker.exists()


def test_generator_names_a_missing_gguf_file(tmp_path):
    with pytest.raises(CheckpointError, match="no GGUF file model.gguf"):
        TransformersGenerator.from_pretrained(tmp_path, gguf_file="model.gguf")
