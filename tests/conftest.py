"""Shared fixtures: tiny models built from configs (fast), the real embedded ones, a real Redis."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = [
    "the red block is on top of the blue block.",
    "pick up the red block\nput down the red block\n",
    "unstack the blue block from on top of the yellow block\nstack the blue block on top of the red block\n",
    "the hand is empty and the yellow block is clear.",
]


@pytest.fixture(scope="session")
def tiny_lm_tokenizer():
    """A byte-level BPE tokenizer trained in memory on a few Blocksworld sentences."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<pad>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 10, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def make_tiny_lm(tokenizer, seed: int = 0, max_position_embeddings: int = 512):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_position_embeddings,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None)
    return LlamaForCausalLM(config).eval()


@pytest.fixture()
def tiny_generator(tiny_lm_tokenizer):
    from srm_agent.generators import TransformersGenerator

    return TransformersGenerator(make_tiny_lm(tiny_lm_tokenizer), tiny_lm_tokenizer, device="cpu")


@pytest.fixture(scope="session")
def encoder_tokenizer_dir() -> Path:
    """The embedded MiniLM's tokenizer folder (a real WordPiece vocabulary, loads in milliseconds)."""
    from srm_agent.embedded import embedded_srm_backbone

    return embedded_srm_backbone()


def make_tiny_srm_model(seed: int = 0, max_position_embeddings: int = 128):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=max_position_embeddings, num_labels=1)
    return BertForSequenceClassification(config).eval()


@pytest.fixture()
def tiny_srm(encoder_tokenizer_dir):
    from transformers import AutoTokenizer

    from srm_agent.srm import SpeculativeRewardModel

    tokenizer = AutoTokenizer.from_pretrained(encoder_tokenizer_dir)
    return SpeculativeRewardModel(make_tiny_srm_model(), tokenizer, device="cpu", batch_size=4)


@pytest.fixture()
def tiny_srm_dir(tiny_srm, tmp_path) -> Path:
    return tiny_srm.save_pretrained(tmp_path / "tiny-srm")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis that `make test` provides; the cache tests never stand in a fake for it."""
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis answers at {url} ({exc}); run the tests with `make test`, which starts one")
    return url


@pytest.fixture()
def redis_namespace(redis_url, request):
    """A namespace private to one test, deleted afterwards."""
    import redis

    namespace = f"srm-test-{os.getpid()}-{request.node.name}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{namespace}:*"))
    if keys:
        client.delete(*keys)
