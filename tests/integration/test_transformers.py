"""maggy.integrations.transformers in a lagom (a tiny BERT made from its config, no download):
the median rule stops the poor trials at an evaluation, and the Trainer's global step shows it."""

from __future__ import annotations

import importlib.util

import pytest

from tests.integration.frameworks import check_median_run, hold, median_run

if importlib.util.find_spec("transformers") is None:  # not imported here: only the workers need it
    pytest.skip("needs transformers", allow_module_level=True)
EPOCHS, STEPS_PER_EPOCH = 6, 4
GOOD, POOR = [3e-3, 2e-3, 4e-3], [1e-7, 2e-7]


def train(lr, reporter):
    import tempfile

    import numpy as np
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

    from maggy.integrations.transformers import MaggyCallback

    class Hold(TrainerCallback):  # after the evaluation's report: a poor trial waits for its stop
        def on_evaluate(self, args, state, control, **kwargs):
            hold(reporter, lr, POOR)

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 30, size=(160, 6))
    labels = (tokens[:, 0] > 15).astype(int)  # the first token says the class
    data = [{"input_ids": torch.tensor(t), "labels": int(label)} for t, label in zip(tokens, labels)]
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                        max_position_embeddings=8, num_labels=2)
    model = BertForSequenceClassification(config)

    def accuracy(prediction):
        return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}

    cb = MaggyCallback(reporter, metric="eval_accuracy")
    args = TrainingArguments(tempfile.mkdtemp(), learning_rate=lr, num_train_epochs=EPOCHS, per_device_train_batch_size=32,
                             eval_strategy="epoch", save_strategy="no", report_to="none", use_cpu=True, seed=0,
                             disable_tqdm=True, logging_strategy="no", dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=data[:128], eval_dataset=data[128:], compute_metrics=accuracy,
                      callbacks=[cb, Hold()])
    trainer.train()
    evals = [e["eval_accuracy"] for e in trainer.state.log_history if "eval_accuracy" in e]
    return {"metric": cb.last, "global_step": trainer.state.global_step, "framework_last": evals[-1]}


def test_the_median_rule_stops_poor_trials_at_an_evaluation(tmp_path):
    result = median_run(train, tmp_path, "hf", direction="max", good=GOOD, poor=POOR)
    df = check_median_run(result, "global_step", EPOCHS * STEPS_PER_EPOCH, good=GOOD, poor=POOR, past=0)
    assert (df.loc[POOR, "global_step"] % STEPS_PER_EPOCH == 0).all()  # at the end of an epoch's evaluation
